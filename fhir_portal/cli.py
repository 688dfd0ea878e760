"""The ``fhir-portal`` command."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import logging
import sys

from aiohttp import web

from fhir_portal.settings import ROOT, Settings


def _hapi_config(settings: Settings):  # type: ignore[no-untyped-def]
    from fhir_portal.hapi_server import HapiConfig

    return HapiConfig(
        project_dir=ROOT / "hapi",
        port=settings.hapi_port,
        data_dir=settings.data_dir / "hapi",
        java_opts=settings.hapi_java_opts,
        jdbc_url=settings.hapi_jdbc_url or None,
        jdbc_user=settings.hapi_jdbc_user or None,
        jdbc_password=settings.hapi_jdbc_password or None,
    )


def build_hapi() -> None:
    """Build the HAPI jar when it is missing or older than its sources (scripts/bootstrap)."""
    from fhir_portal import hapi_server

    try:
        hapi_server.build(_hapi_config(Settings.from_env()))
    except hapi_server.HapiError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from exc


def cmd_hapi(settings: Settings, args: argparse.Namespace) -> int:
    from fhir_portal import hapi_server

    cfg = _hapi_config(settings)
    try:
        if args.action == "start":
            seconds = hapi_server.start(cfg)
            if seconds == 0.0:
                print(f"HAPI FHIR is already running at {hapi_server.base_url(cfg)}")
            else:
                print(f"HAPI FHIR started in {seconds:.1f} s at {hapi_server.base_url(cfg)}")
        elif args.action == "stop":
            print("HAPI FHIR stopped" if hapi_server.stop(cfg) else "HAPI FHIR was not running")
        else:
            up, description = hapi_server.status(cfg)
            print(f"HAPI FHIR: {description}")
            return 0 if up else 3
    except hapi_server.HapiError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def cmd_load_fixtures(settings: Settings, args: argparse.Namespace) -> int:
    from fhir_portal.provision.loader import load_all

    report = asyncio.run(load_all(settings, validate=args.validate))
    print(report.summary())
    return 0 if report.ok else 1


def cmd_serve(settings: Settings, args: argparse.Namespace) -> int:
    from fhir_portal.app import configure_logging, create_app

    configure_logging()
    web.run_app(create_app(settings), host=settings.host, port=settings.port, print=None)
    return 0


def cmd_demo(settings: Settings, args: argparse.Namespace) -> int:
    from dataclasses import replace

    from fhir_portal.provision.demo import prepare_demo

    # the demo's mail goes to an SMTP sink inside the portal, readable at /demo/mailbox
    settings = replace(settings, demo_mailbox=True)
    if settings.uses_embedded_fhir and cmd_hapi(settings, argparse.Namespace(action="start")):
        return 2
    try:
        lines = asyncio.run(prepare_demo(settings))
    except Exception as exc:  # noqa: BLE001 - one clear line, not a traceback
        print(f"error: could not prepare the demo: {exc}", file=sys.stderr)
        return 2
    print(f"\nThe portal is at {settings.public_url}/")
    print(f"Emails the demo sends: {settings.public_url}/demo/mailbox")
    for line in lines:
        print(line)
    print("Stop with Ctrl+C (the FHIR server keeps running: `fhir-portal hapi stop`).\n")
    return cmd_serve(settings, args)


def cmd_invite(settings: Settings, args: argparse.Namespace) -> int:
    from fhir_portal.auth.activation import invite_patient

    try:
        link, code = asyncio.run(invite_patient(settings, args.patient_id, args.email))
    except Exception as exc:  # noqa: BLE001
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"Activation link: {link}")
    print(f"Activation code: {code}")
    return 0


def cmd_staff_add(settings: Settings, args: argparse.Namespace) -> int:
    from fhir_portal.auth.staff import add_staff

    password = args.password or getpass.getpass("Password for the new staff account: ")
    try:
        account = asyncio.run(
            add_staff(settings, email=args.email, role=args.role, password=password,
                      practitioner_id=args.practitioner, name=args.name)
        )
    except Exception as exc:  # noqa: BLE001
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"Staff account {account.email} ({args.role}) created.")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fhir-portal", description="A FHIR-native patient portal")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("serve", help="serve the portal")
    sub.add_parser("demo", help="start the embedded FHIR server, load demo data, serve")
    hapi = sub.add_parser("hapi", help="control the embedded HAPI FHIR server")
    hapi.add_argument("action", choices=["start", "stop", "status"])
    load = sub.add_parser("load-fixtures", help="install profiles and demo data (idempotent)")
    load.add_argument("--validate", action="store_true", help="also $validate every resource")
    invite = sub.add_parser("invite", help="invite a patient the FHIR server already knows")
    invite.add_argument("patient_id")
    invite.add_argument("--email", required=True)
    staff = sub.add_parser("staff", help="manage staff accounts")
    staff_sub = staff.add_subparsers(dest="staff_command", required=True)
    add = staff_sub.add_parser("add", help="add a staff account")
    add.add_argument("--role", choices=["agent", "clinician", "admin"], required=True)
    add.add_argument("--email", required=True)
    add.add_argument("--practitioner", help="the Practitioner id (clinicians)")
    add.add_argument("--name", default="")
    add.add_argument("--password", help="(prompted when omitted)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    settings = Settings.from_env()
    handlers = {
        "hapi": cmd_hapi,
        "load-fixtures": cmd_load_fixtures,
        "serve": cmd_serve,
        "demo": cmd_demo,
        "invite": cmd_invite,
    }
    if args.command == "staff":
        return cmd_staff_add(settings, args)
    return handlers[args.command](settings, args)


if __name__ == "__main__":
    sys.exit(main())
