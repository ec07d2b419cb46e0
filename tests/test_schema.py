"""The migrations build exactly the models' schema; the lookup is an indexed query."""

from __future__ import annotations

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from connector.db import session_scope
from connector.models import Base, Contact, ContactEmail, Organization
from connector.records.service import contact_by_email_query


def test_migrations_match_the_models(app) -> None:
    engine = app.extensions["connector.engine"]
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, Base.metadata)
    assert differences == []


def test_postgres_plans_the_lookup_with_an_index(app, backend) -> None:
    if backend != "postgres":
        return
    engine = app.extensions["connector.engine"]
    with session_scope(app) as session:
        orgs = [Organization(name=f"Org {n}") for n in range(3)]
        session.add_all(orgs)
        session.flush()
        for n in range(6000):
            org = orgs[n % 3]
            session.add(
                Contact(
                    organization_id=org.id,
                    name=f"Person {n}",
                    emails=[
                        ContactEmail(organization_id=org.id, email=f"p{n}@example{n % 50}.test")
                    ],
                )
            )
        org_id = orgs[1].id
    with engine.connect() as connection:
        connection.execute(sa.text("ANALYZE"))
        query = contact_by_email_query(org_id, "P4@Example4.test")
        compiled = query.compile(engine, compile_kwargs={"literal_binds": True})
        plan = "\n".join(row[0] for row in connection.execute(sa.text(f"EXPLAIN {compiled}")))
    assert "uq_contact_emails_organization_id_email" in plan, plan
    assert "Seq Scan on contact_emails" not in plan, plan
