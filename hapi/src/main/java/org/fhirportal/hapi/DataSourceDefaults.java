package org.fhirportal.hapi;

import org.springframework.boot.context.event.ApplicationEnvironmentPreparedEvent;
import org.springframework.context.ApplicationListener;
import org.springframework.core.env.ConfigurableEnvironment;
import org.springframework.core.env.MapPropertySource;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Fills in the database settings nobody gave explicitly (lowest precedence):
 * <ul>
 *   <li>{@code spring.datasource.url}: an H2 file database {@code <portal.hapi.data-dir>/h2}
 *       (data dir default {@code ./var/hapi}, made absolute and created);</li>
 *   <li>{@code spring.jpa.properties.hibernate.dialect}: the HAPI dialect matching the URL
 *       (PostgreSQL or H2).</li>
 * </ul>
 */
public class DataSourceDefaults implements ApplicationListener<ApplicationEnvironmentPreparedEvent> {

	static final String DATA_DIR = "portal.hapi.data-dir";
	static final String URL = "spring.datasource.url";
	static final String USERNAME = "spring.datasource.username";
	static final String PASSWORD = "spring.datasource.password";
	static final String DIALECT = "spring.jpa.properties.hibernate.dialect";

	@Override
	public void onApplicationEvent(ApplicationEnvironmentPreparedEvent event) {
		ConfigurableEnvironment env = event.getEnvironment();
		Map<String, Object> defaults = new LinkedHashMap<>();

		Path dataDir = Path.of(env.getProperty(DATA_DIR, "./var/hapi")).toAbsolutePath().normalize();
		defaults.put(DATA_DIR, dataDir.toString());

		String url = env.getProperty(URL);
		if (url == null || url.isBlank()) {
			try {
				Files.createDirectories(dataDir);
			} catch (IOException e) {
				throw new UncheckedIOException("cannot create data dir " + dataDir, e);
			}
			// DB_CLOSE_ON_EXIT=FALSE: the pool closes the database on shutdown, not H2's own hook.
			// TRACE_LEVEL_FILE=0: no h2.trace.db (Hibernate's start-up probing of temporary
			// tables fails harmlessly on every start and would grow it).
			url = "jdbc:h2:file:" + dataDir.resolve("h2") + ";DB_CLOSE_ON_EXIT=FALSE;TRACE_LEVEL_FILE=0";
			defaults.put(URL, url);
		}
		boolean h2 = url.startsWith("jdbc:h2:");
		if (h2 && isBlank(env.getProperty(USERNAME))) {
			defaults.put(USERNAME, "sa");
			defaults.put(PASSWORD, "");
		}
		if (isBlank(env.getProperty(DIALECT))) {
			if (url.startsWith("jdbc:postgresql:")) {
				defaults.put(DIALECT, "ca.uhn.fhir.jpa.model.dialect.HapiFhirPostgresDialect");
			} else if (h2) {
				defaults.put(DIALECT, "ca.uhn.fhir.jpa.model.dialect.HapiFhirH2Dialect");
			}
		}
		env.getPropertySources().addLast(new MapPropertySource("portalHapiDefaults", defaults));
	}

	private static boolean isBlank(String s) {
		return s == null || s.isBlank();
	}
}
