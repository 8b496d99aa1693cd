"""The decision point, table-driven: roles, API keys, permissions, public data, personal data and
consent; and the readable scope agrees with ``decide`` (the SQL form is checked against
PostgreSQL in tests/integration/auth/test_readable_sql.py)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from city_os.auth.policy import (
    Action,
    Consent,
    EntityFacts,
    Operation,
    Permission,
    TenantOperation,
    decide,
    may,
    parse_scope_pattern,
    readable,
    scope_covers,
)
from city_os.auth.principal import ANONYMOUS, UNRESTRICTED, KeyScope, Principal, subject_key

NS = "https://city-os.jp/ns/"
AED, SHELTER, CHILD = NS + "AED", NS + "EvacuationShelter", NS + "ChildcareApplication"
ISS, CITIZENS = "https://idp.saga.example/staff", "https://idp.saga.example/citizens"
NOW = 1_800_000_000.0

aed = EntityFacts("urn:ngsi-ld:AED:1", (AED,), ("/Saga/Nishiyoka",))
shelter = EntityFacts("urn:ngsi-ld:EvacuationShelter:1", (SHELTER,), ())
application = EntityFacts("urn:ngsi-ld:ChildcareApplication:1", (CHILD,), (), (CITIZENS, "c-1"))


def user(*roles: str, tenants: frozenset[str] | None = None, **kw: object) -> Principal:
    per_tenant: dict[str, set[str]] = {}
    for value in roles:
        role, _, tenant = value.partition("@")
        per_tenant.setdefault(tenant, set()).add(role)
    fields: dict[str, object] = {"subject": "u-1", "issuer": ISS, "tenants": tenants}
    fields.update(kw)
    return Principal(roles={t: frozenset(r) for t, r in per_tenant.items()}, **fields)  # type: ignore[arg-type]


citizen = Principal(subject="c-1", issuer=CITIZENS, citizen=True, client="super-app")
other_citizen = Principal(subject="c-2", issuer=CITIZENS, citizen=True, client="super-app")
service = Principal(subject="svc-account", issuer=ISS, client="childcare-app")
form_key = Principal(
    api_key=KeyScope("k1", "saga", frozenset({Operation.CREATE}), frozenset({NS + "Report"}))
)
sensor_key = Principal(
    api_key=KeyScope("k2", "saga", frozenset({Operation.READ, Operation.UPDATE}))
)

public_aed = Permission("p-public", "public", Action.READ, types=frozenset({AED}))
group_write = Permission("p-group", "group:disaster", Action.WRITE, types=frozenset({SHELTER}))
scoped_read = Permission(
    "p-scope", "authenticated", Action.READ, scopes=(parse_scope_pattern("/Saga/#"),)
)
entity_admin = Permission("p-entity", subject_key(ISS, "u-9"), Action.ADMIN, entity_id=shelter.id)
personal_read = Permission(
    "p-personal", "client:childcare-app", Action.READ, types=frozenset({CHILD}), personal=True
)
nonpersonal_read = Permission("p-np", "client:childcare-app", Action.READ, types=frozenset({CHILD}))
consent = Consent("c-ok", CITIZENS, "c-1", "childcare-app", frozenset({CHILD}), NOW + 60)

R, C, U, D, S = (
    Operation.READ,
    Operation.CREATE,
    Operation.UPDATE,
    Operation.DELETE,
    Operation.SHARE,
)

CASES = [
    # (who, tenant, operation, entity, permissions, consents, allowed)
    ("off", UNRESTRICTED, "saga", D, aed, [], [], True),
    ("anonymous nothing", ANONYMOUS, "saga", R, aed, [], [], False),
    ("anonymous public data", ANONYMOUS, "saga", R, aed, [public_aed], [], True),
    ("public is read only", ANONYMOUS, "saga", U, aed, [public_aed], [], False),
    ("public is one type", ANONYMOUS, "saga", R, shelter, [public_aed], [], False),
    ("reader reads", user("reader@saga"), "saga", R, aed, [], [], True),
    ("reader does not write", user("reader@saga"), "saga", U, aed, [], [], False),
    ("reader of another tenant", user("reader@kyoto"), "saga", R, aed, [], [], False),
    ("writer writes", user("writer@saga"), "saga", D, aed, [], [], True),
    ("writer does not share", user("writer@saga"), "saga", S, aed, [], [], False),
    ("admin shares", user("admin@saga"), "saga", S, aed, [], [], True),
    ("steward reads", user("steward@saga"), "saga", R, aed, [], [], True),
    ("steward does not write", user("steward@saga"), "saga", C, aed, [], [], False),
    ("default tenant role", user("writer"), "", U, aed, [], [], True),
    ("default role is not saga", user("writer"), "saga", U, aed, [], [], False),
    (
        "issuer not trusted for tenant",
        user("writer@saga", tenants=frozenset({"kyoto"})),
        "saga",
        U,
        aed,
        [],
        [],
        False,
    ),
    (
        "group permission",
        user(groups=frozenset({"disaster"})),
        "saga",
        U,
        shelter,
        [group_write],
        [],
        True,
    ),
    (
        "group permission, other type",
        user(groups=frozenset({"disaster"})),
        "saga",
        U,
        aed,
        [group_write],
        [],
        False,
    ),
    ("authenticated scope", user(), "saga", R, aed, [scoped_read], [], True),
    ("authenticated scope, anonymous", ANONYMOUS, "saga", R, aed, [scoped_read], [], False),
    ("scope outside", user(), "saga", R, shelter, [scoped_read], [], False),
    ("entity permission", user(subject="u-9"), "saga", S, shelter, [entity_admin], [], True),
    (
        "entity permission, other entity",
        user(subject="u-9"),
        "saga",
        R,
        aed,
        [entity_admin],
        [],
        False,
    ),
    (
        "entity permission, other user",
        user(subject="u-8"),
        "saga",
        R,
        shelter,
        [entity_admin],
        [],
        False,
    ),
    ("form key creates", form_key, "saga", C, EntityFacts("urn:x", (NS + "Report",)), [], [], True),
    (
        "form key reads not",
        form_key,
        "saga",
        R,
        EntityFacts("urn:x", (NS + "Report",)),
        [],
        [],
        False,
    ),
    ("form key other type", form_key, "saga", C, aed, [], [], False),
    (
        "form key other tenant",
        form_key,
        "kyoto",
        C,
        EntityFacts("urn:x", (NS + "Report",)),
        [],
        [],
        False,
    ),
    ("sensor key updates any type", sensor_key, "saga", U, aed, [], [], True),
    ("sensor key never deletes", sensor_key, "saga", D, aed, [public_aed], [], False),
    ("a form key reads public data", form_key, "saga", R, aed, [public_aed], [], True),
    ("a key elsewhere reads public data", form_key, "kyoto", R, aed, [public_aed], [], True),
    ("citizen reads own", citizen, "saga", R, application, [], [], True),
    ("citizen writes not", citizen, "saga", U, application, [], [], False),
    ("other citizen", other_citizen, "saga", R, application, [], [], False),
    (
        "type permission skips personal",
        service,
        "saga",
        R,
        application,
        [nonpersonal_read],
        [],
        False,
    ),
    ("personal permission", service, "saga", R, application, [personal_read], [], True),
    ("consent", service, "saga", R, application, [], [consent], True),
    ("consent is read only", service, "saga", U, application, [], [consent], False),
    (
        "expired consent",
        service,
        "saga",
        R,
        application,
        [],
        [Consent("c-old", CITIZENS, "c-1", "childcare-app", frozenset({CHILD}), NOW - 1)],
        False,
    ),
    (
        "revoked consent",
        service,
        "saga",
        R,
        application,
        [],
        [Consent("c-rev", CITIZENS, "c-1", "childcare-app", frozenset({CHILD}), NOW + 60, True)],
        False,
    ),
    (
        "consent of another service",
        Principal(subject="x", issuer=ISS, client="ads"),
        "saga",
        R,
        application,
        [],
        [consent],
        False,
    ),
    (
        "consent for other types",
        service,
        "saga",
        R,
        application,
        [],
        [Consent("c-t", CITIZENS, "c-1", "childcare-app", frozenset({AED}), NOW + 60)],
        False,
    ),
    (
        "citizen token via the service's app gets no consent reads",
        Principal(subject="c-2", issuer=CITIZENS, citizen=True, client="childcare-app"),
        "saga",
        R,
        application,
        [],
        [consent],
        False,
    ),
]


@pytest.mark.parametrize(
    ("principal", "tenant", "operation", "entity", "permissions", "consents", "allowed"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_decide(
    principal: Principal,
    tenant: str,
    operation: Operation,
    entity: EntityFacts,
    permissions: list[Permission],
    consents: list[Consent],
    allowed: bool,
) -> None:
    decision = decide(principal, tenant, operation, entity, permissions, consents, NOW)
    assert decision.allowed is allowed, decision.reason
    assert decision.reason


def test_a_consent_read_names_its_consent() -> None:
    decision = decide(service, "saga", R, application, [], [consent], NOW)
    assert decision.via_consent == "c-ok"
    assert decide(citizen, "saga", R, application, [], [consent], NOW).via_consent is None


@pytest.mark.parametrize(
    ("principal", "operation", "allowed"),
    [
        (user("admin@saga"), TenantOperation.MANAGE_ACCESS, True),
        (user("steward@saga"), TenantOperation.MANAGE_ACCESS, False),
        (user("steward@saga"), TenantOperation.STEWARD, True),
        (user("admin@saga"), TenantOperation.STEWARD, True),
        (user("writer@saga"), TenantOperation.STEWARD, False),
        (user("admin@saga"), TenantOperation.OPERATE, False),
        (user(operator=True), TenantOperation.OPERATE, True),
        (ANONYMOUS, TenantOperation.STEWARD, False),
        (UNRESTRICTED, TenantOperation.MANAGE_ACCESS, True),
        (sensor_key, TenantOperation.STEWARD, False),
    ],
)
def test_may(principal: Principal, operation: TenantOperation, allowed: bool) -> None:
    assert may(principal, "saga", operation).allowed is allowed


@pytest.mark.parametrize(
    ("pattern", "scope", "covered"),
    [
        ("/Saga", "/Saga", True),
        ("/Saga", "/Saga/Nishiyoka", False),
        ("/Saga/#", "/Saga", True),
        ("/Saga/#", "/Saga/Nishiyoka/1", True),
        ("/Saga/#", "/Sagami", False),
        ("/Saga/+", "/Saga/Nishiyoka", True),
        ("/Saga/+", "/Saga", False),
        ("/+/Nishiyoka", "/Saga/Nishiyoka", True),
        ("/#", "/anything", True),
    ],
)
def test_scope_covers(pattern: str, scope: str, covered: bool) -> None:
    assert scope_covers(parse_scope_pattern(pattern), scope) is covered


@pytest.mark.parametrize("bad", ["", "/", "Saga", "/Saga/", "/Sa#ga", "/#/x", "//x"])
def test_bad_scope_patterns(bad: str) -> None:
    with pytest.raises(ValueError, match="scope pattern"):
        parse_scope_pattern(bad)


# --- readable() agrees with decide(READ) for every entity ---------------------------------------

TYPES = [AED, SHELTER, CHILD]
SCOPES = ["/Saga", "/Saga/Nishiyoka", "/Kyoto"]
SUBJECTS = [None, (CITIZENS, "c-1"), (CITIZENS, "c-2")]
ASSIGNEES = [
    "public",
    "authenticated",
    subject_key(ISS, "u-1"),
    subject_key(CITIZENS, "c-1"),
    "group:disaster",
    "client:childcare-app",
    "apikey:k2",
]
PATTERNS = ["/Saga", "/Saga/#", "/+/Nishiyoka", "/#", "/Kyoto"]

entities = st.builds(
    EntityFacts,
    id=st.sampled_from([f"urn:e:{n}" for n in range(6)]),
    types=st.lists(st.sampled_from(TYPES), min_size=1, max_size=2, unique=True).map(tuple),
    scopes=st.lists(st.sampled_from(SCOPES), max_size=2, unique=True).map(tuple),
    subject=st.sampled_from(SUBJECTS),
)
permissions = st.builds(
    Permission,
    id=st.uuids().map(str),
    assignee=st.sampled_from(ASSIGNEES),
    action=st.sampled_from(list(Action)),
    entity_id=st.none() | st.sampled_from([f"urn:e:{n}" for n in range(6)]),
    types=st.none() | st.frozensets(st.sampled_from(TYPES), min_size=1),
    scopes=st.none()
    | st.lists(st.sampled_from(PATTERNS), min_size=1, max_size=2).map(
        lambda ps: tuple(parse_scope_pattern(p) for p in ps)
    ),
    personal=st.booleans(),
).map(lambda p: p if p.entity_id is None else Permission(p.id, p.assignee, p.action, p.entity_id))
consents = st.builds(
    Consent,
    id=st.uuids().map(str),
    issuer=st.just(CITIZENS),
    subject=st.sampled_from(["c-1", "c-2"]),
    client=st.sampled_from(["childcare-app", "ads"]),
    types=st.frozensets(st.sampled_from(TYPES), min_size=1),
    expires=st.sampled_from([NOW - 5, NOW + 5]),
    revoked=st.booleans(),
)
principals = st.sampled_from(
    [
        ANONYMOUS,
        UNRESTRICTED,
        user(),
        user("reader@saga"),
        user("writer@kyoto"),
        user(groups=frozenset({"disaster"})),
        user(tenants=frozenset({"kyoto"}), groups=frozenset({"disaster"})),
        citizen,
        service,
        form_key,
        sensor_key,
        Principal(api_key=KeyScope("k2", "saga", frozenset({Operation.READ}), frozenset({AED}))),
    ]
)


def selected(
    scope_: object, entity: EntityFacts, perms: list[Permission], cons: list[Consent]
) -> bool:
    """The readable scope evaluated in Python the way the SQL builder evaluates it."""
    from city_os.auth.policy import ReadableScope

    assert isinstance(scope_, ReadableScope)
    if scope_.everything:
        return True
    for sel in scope_.selectors:
        probe = Permission("probe", "x", Action.READ, None, sel.types, sel.scopes, sel.personal)
        if probe.covers(entity):
            return True
    if any(p.entity_id == entity.id and p.assignee in scope_.grantees for p in perms):
        return True
    if scope_.subject is not None and entity.subject == scope_.subject:
        return True
    return scope_.consent_client is not None and any(
        (c.issuer, c.subject) == entity.subject
        and c.client == scope_.consent_client
        and c.valid(NOW)
        and not c.types.isdisjoint(entity.types)
        for c in cons
    )


@settings(max_examples=400, deadline=None)
@given(
    principal=principals,
    entity=entities,
    perms=st.lists(permissions, max_size=6),
    cons=st.lists(consents, max_size=3),
)
def test_readable_scope_agrees_with_decide(
    principal: Principal, entity: EntityFacts, perms: list[Permission], cons: list[Consent]
) -> None:
    type_perms = [p for p in perms if p.entity_id is None]
    scope_ = readable(principal, "saga", type_perms)
    expected = decide(principal, "saga", R, entity, perms, cons, NOW).allowed
    assert selected(scope_, entity, perms, cons) is expected
