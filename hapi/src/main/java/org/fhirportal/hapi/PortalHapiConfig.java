package org.fhirportal.hapi;

import ca.uhn.fhir.context.FhirContext;
import ca.uhn.fhir.context.support.IValidationSupport;
import ca.uhn.fhir.jpa.api.config.JpaStorageSettings;
import ca.uhn.fhir.jpa.api.dao.IFhirSystemDao;
import ca.uhn.fhir.jpa.config.util.HapiEntityManagerFactoryUtil;
import ca.uhn.fhir.jpa.model.config.PartitionSettings;
import ca.uhn.fhir.jpa.model.config.SubscriptionSettings;
import ca.uhn.fhir.jpa.provider.IJpaSystemProvider;
import ca.uhn.fhir.jpa.provider.JpaCapabilityStatementProvider;
import ca.uhn.fhir.jpa.provider.ValueSetOperationProvider;
import ca.uhn.fhir.jpa.search.DatabaseBackedPagingProvider;
import ca.uhn.fhir.jpa.subscription.match.deliver.email.IEmailSender;
import ca.uhn.fhir.jpa.util.LoggingEmailSender;
import ca.uhn.fhir.narrative2.NullNarrativeGenerator;
import ca.uhn.fhir.rest.server.ETagSupportEnum;
import ca.uhn.fhir.rest.server.IncomingRequestAddressStrategy;
import ca.uhn.fhir.rest.server.RestfulServer;
import ca.uhn.fhir.rest.server.interceptor.LoggingInterceptor;
import ca.uhn.fhir.rest.server.provider.ResourceProviderFactory;
import ca.uhn.fhir.rest.server.util.ISearchParamRegistry;
import jakarta.persistence.EntityManagerFactory;
import org.hibernate.boot.model.naming.CamelCaseToUnderscoresNamingStrategy;
import org.hibernate.cfg.AvailableSettings;
import org.hl7.fhir.dstu2.model.Subscription.SubscriptionChannelType;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.springframework.beans.factory.annotation.Value;
import org.springframework.beans.factory.config.ConfigurableListableBeanFactory;
import org.springframework.boot.autoconfigure.orm.jpa.JpaProperties;
import org.springframework.boot.orm.jpa.hibernate.SpringImplicitNamingStrategy;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;
import org.springframework.context.annotation.Primary;
import org.springframework.orm.jpa.JpaTransactionManager;
import org.springframework.orm.jpa.LocalContainerEntityManagerFactoryBean;

import java.util.Map;
import javax.sql.DataSource;

/** The beans HAPI's JPA configuration expects the application to supply, set for the portal. */
@Configuration
public class PortalHapiConfig {

	private static final Logger ourLog = LoggerFactory.getLogger(PortalHapiConfig.class);

	@Bean
	public JpaStorageSettings jpaStorageSettings() {
		JpaStorageSettings s = new JpaStorageSettings();
		// client-assigned ids must contain a letter (HAPI's default ALPHANUMERIC strategy)
		s.setResourceClientIdStrategy(JpaStorageSettings.ClientIdStrategyEnum.ALPHANUMERIC);
		s.setAllowExternalReferences(false);
		s.setEnforceReferentialIntegrityOnWrite(true);
		s.setEnforceReferentialIntegrityOnDelete(true);
		s.setAutoCreatePlaceholderReferenceTargets(false);
		s.setDeleteEnabled(true);
		// no full-text indexing: Hibernate Search is off
		s.setHibernateSearchIndexFullText(false);
		s.setHibernateSearchIndexSearchParams(false);
		s.setStoreResourceInHSearchIndex(false);
		// ValueSet pre-expansion needs Hibernate Search; expand in memory instead (small value sets)
		s.setPreExpandValueSets(false);
		s.setEnableTaskPreExpandValueSets(false);
		// identical searches reuse results for 60 s unless the request says Cache-Control: no-cache
		s.setReuseCachedSearchResultsForMillis(60_000L);
		return s;
	}

	@Bean
	public SubscriptionSettings subscriptionSettings(
			@Value("${portal.hapi.subscription-poll-ms:1000}") long pollMillis) {
		SubscriptionSettings s = new SubscriptionSettings();
		s.addSupportedSubscriptionType(SubscriptionChannelType.RESTHOOK);
		// a new Subscription goes requested -> active without waiting for the poll
		s.setSubscriptionChangeQueuedImmediately(true);
		// resource changes are persisted, then handed to matching by a job every N ms
		// (HAPI default 5000): this bounds the rest-hook delivery delay
		s.setSubscriptionIntervalInMs(pollMillis);
		return s;
	}

	@Bean
	public PartitionSettings partitionSettings() {
		return new PartitionSettings();
	}

	/** Email subscriptions are not enabled; the subscription module still wants a sender. */
	@Bean
	public IEmailSender emailSender() {
		return new LoggingEmailSender();
	}

	@Primary
	@Bean
	public LocalContainerEntityManagerFactoryBean entityManagerFactory(
			JpaProperties jpaProperties,
			DataSource dataSource,
			ConfigurableListableBeanFactory beanFactory,
			FhirContext fhirContext,
			JpaStorageSettings storageSettings) {
		LocalContainerEntityManagerFactoryBean emf =
				HapiEntityManagerFactoryUtil.newEntityManagerFactory(beanFactory, fhirContext, storageSettings);
		Map<String, String> p = jpaProperties.getProperties();
		p.putIfAbsent(AvailableSettings.SCANNER, "org.hibernate.boot.archive.scan.internal.DisabledScanner");
		p.putIfAbsent(AvailableSettings.IMPLICIT_NAMING_STRATEGY, SpringImplicitNamingStrategy.class.getName());
		p.putIfAbsent(AvailableSettings.PHYSICAL_NAMING_STRATEGY, CamelCaseToUnderscoresNamingStrategy.class.getName());
		p.putIfAbsent(AvailableSettings.FORMAT_SQL, "false");
		p.putIfAbsent(AvailableSettings.SHOW_SQL, "false");
		p.putIfAbsent(AvailableSettings.HBM2DDL_AUTO, "update");
		p.putIfAbsent(AvailableSettings.STATEMENT_BATCH_SIZE, "20");
		p.putIfAbsent(AvailableSettings.USE_QUERY_CACHE, "false");
		p.putIfAbsent(AvailableSettings.USE_SECOND_LEVEL_CACHE, "false");
		p.putIfAbsent(AvailableSettings.USE_STRUCTURED_CACHE, "false");
		p.putIfAbsent(AvailableSettings.USE_MINIMAL_PUTS, "false");
		p.putIfAbsent("hibernate.search.enabled", "false");
		ourLog.info("Database {} (dialect {})", redact(dataSource), p.get("hibernate.dialect"));
		emf.setPersistenceUnitName("HAPI_PU");
		emf.setJpaPropertyMap(p);
		emf.setDataSource(dataSource);
		return emf;
	}

	private static String redact(DataSource ds) {
		if (ds instanceof com.zaxxer.hikari.HikariDataSource h) {
			return h.getJdbcUrl();
		}
		return ds.getClass().getSimpleName();
	}

	@Primary
	@Bean
	public JpaTransactionManager transactionManager(EntityManagerFactory entityManagerFactory) {
		JpaTransactionManager tm = new JpaTransactionManager();
		tm.setEntityManagerFactory(entityManagerFactory);
		return tm;
	}

	@Bean
	public LoggingInterceptor loggingInterceptor() {
		LoggingInterceptor li = new LoggingInterceptor();
		li.setLoggerName("portal.hapi.access");
		li.setMessageFormat("${operationType} ${requestVerb} ${requestUrl} ${idOrResourceName} "
				+ "${requestParameters} ${processingTimeMillis}ms");
		li.setErrorMessageFormat("ERROR ${requestVerb} ${requestUrl} ${exceptionMessage}");
		li.setLogExceptions(true);
		return li;
	}

	@Bean
	public RestfulServer restfulServer(
			IFhirSystemDao<?, ?> systemDao,
			ResourceProviderFactory resourceProviderFactory,
			IJpaSystemProvider jpaSystemProvider,
			JpaStorageSettings storageSettings,
			ISearchParamRegistry searchParamRegistry,
			IValidationSupport validationSupport,
			DatabaseBackedPagingProvider pagingProvider,
			ValueSetOperationProvider valueSetOperationProvider,
			LoggingInterceptor loggingInterceptor,
			@Value("${portal.hapi.default-page-size:50}") int defaultPageSize,
			@Value("${portal.hapi.max-page-size:500}") int maxPageSize) {
		FhirContext ctx = systemDao.getContext();
		ctx.setNarrativeGenerator(new NullNarrativeGenerator());

		RestfulServer server = new RestfulServer(ctx);
		server.registerProviders(resourceProviderFactory.createProviders());
		server.registerProvider(jpaSystemProvider);
		server.registerProvider(valueSetOperationProvider);

		JpaCapabilityStatementProvider capabilities = new JpaCapabilityStatementProvider(
				server, systemDao, storageSettings, searchParamRegistry, validationSupport);
		capabilities.setImplementationDescription("FHIR portal HAPI FHIR R4 server");
		server.setServerConformanceProvider(capabilities);

		server.setETagSupport(ETagSupportEnum.ENABLED);
		server.setDefaultResponseEncoding(ca.uhn.fhir.rest.api.EncodingEnum.JSON);
		server.setDefaultPrettyPrint(false);

		pagingProvider.setDefaultPageSize(defaultPageSize);
		pagingProvider.setMaximumPageSize(maxPageSize);
		server.setPagingProvider(pagingProvider);
		server.setServerAddressStrategy(new IncomingRequestAddressStrategy());
		server.registerInterceptor(loggingInterceptor);
		ourLog.info("FHIR R4 server ready to register at /fhir (page size {} / max {})", defaultPageSize, maxPageSize);
		return server;
	}
}
