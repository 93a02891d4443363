"""Bad input, refused cleanly, on the console's forms and the API's reads and bodies: hypothesis
over the Add Credit form flow and the read API's parameters, and bodies that are not
UTF-8 JSON on every endpoint that takes one (the ingestion endpoint's records are in
test_bad_input.py). Pass, per input: a typed 4xx naming the field, nothing charged or
stored, never a 5xx."""

from decimal import Decimal
from functools import partial
from urllib.parse import urlencode

import pytest
from django import forms
from hypothesis import given
from hypothesis import strategies as st

from accounts.models import Role
from accounts.services import session_token_issue
from billing.models import Payment
from tests.factories import make_member
from tests.reliability.bad_input import FUZZ, TRIED, WRITE_AND_BODY_ENDPOINTS, _ids

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("tried_summary")]


# --- The Add Credit form flow -------------------------------------------------------------


# What a browser can send in a URL or a form: text without lone surrogates.
web_text = partial(st.text, alphabet=st.characters(exclude_categories=("Cs",)))


def _valid_minor(text: str) -> bool:
    try:
        return forms.IntegerField(min_value=500, max_value=1_000_000).clean(text) is not None
    except forms.ValidationError:
        return False


@pytest.fixture
def owner_client(client, api):
    member = make_member(org=api["org"], role=Role.OWNER)
    client.force_login(member.user)
    return client


bad_amount_text = st.one_of(
    st.sampled_from(["NaN", "nan", "Infinity", "-Infinity", "inf", "1e999", "-5", "0", "0.001",
                     "4.999", "10000.01", "99999999999999999999", "1e5", "１０", "\x00", "",
                     "10,00", "$10", " ", "0x10"]),
    web_text(max_size=12),
    st.decimals(allow_nan=True, allow_infinity=True).map(str),
)  # fmt: skip
GOOD_CARD = {"number": "4242 4242 4242 4242", "expiry": "12/99", "cvc": "123", "name": "Ana"}
BAD_CARD_FIELDS = {
    "amount_minor": st.one_of(
        st.integers(max_value=499).map(str),
        st.integers(min_value=1_000_001, max_value=10**40).map(str),
        st.sampled_from(["NaN", "1e5", "10.5", "", "\x00", "inf"]),
        web_text(max_size=8).filter(lambda t: not _valid_minor(t)),
    ),
    "idempotency_key": st.one_of(
        st.just(""),
        web_text(min_size=101, max_size=120).filter(lambda t: len(t.strip()) > 100),
        web_text(max_size=5).map(lambda t: t + "\x00"),
    ),
    "number": st.one_of(
        st.sampled_from(["4242424242424241", "1234", "", "\x00", "4" * 31, "abcd efgh ijkl mnop"]),
        web_text(max_size=30).filter(lambda t: not t.strip()[:1].isdigit()),
    ),
    "expiry": st.sampled_from(
        ["13/99", "00/99", "01/20", "", "ab/cd", "\x00", "-1/-1", "12/99999"]
    ),  # fmt: skip
    "cvc": st.sampled_from(["", "1", "12345", "abc", "\x00", "-12"]),
}


def _payments(org) -> int:
    return Payment.objects.filter(organization=org).count()


@FUZZ
@given(
    custom=bad_amount_text,
    preset=st.one_of(st.none(), st.sampled_from(["custom", "7", "-10", "NaN", "1e9"])),
)
def test_add_credit_amounts_that_are_not_an_amount_are_refused_on_the_form(
    owner_client, api, custom, preset
):
    org = api["org"]
    query = {"custom_amount": custom}
    if preset is not None:
        query["amount"] = preset
    response = owner_client.get(f"/o/{org.slug}/finance/add/details/?{urlencode(query)}")
    TRIED["add-credit amounts"] += 1
    assert response.status_code == 200, response.content[:300]
    html = response.content.decode()
    try:
        dollars = Decimal(custom.strip())
        acceptable = (
            preset in (None, "custom")
            and dollars.is_finite()
            and Decimal("5") <= dollars <= Decimal("10000")
            and dollars.as_tuple().exponent >= -2  # type: ignore[operator]
        )
    except ArithmeticError:
        acceptable = False
    if acceptable:
        assert 'name="number"' in html  # a fine amount: on to the card step
    else:
        assert "form-errors" in html or "errorlist" in html, (custom, preset)
        assert 'name="number"' not in html
    assert _payments(org) == 0


@FUZZ
@given(field=st.sampled_from(sorted(BAD_CARD_FIELDS)), data=st.data())
def test_add_credit_card_details_with_a_bad_field_are_refused_and_charge_nothing(
    owner_client, api, field, data
):
    org = api["org"]
    form = {**GOOD_CARD, "amount_minor": "2500", "idempotency_key": f"k-{next(_ids)}"}
    form[field] = data.draw(BAD_CARD_FIELDS[field])
    response = owner_client.post(f"/o/{org.slug}/finance/add/details/", form)
    TRIED["add-credit card forms"] += 1
    assert response.status_code == 200, (field, form[field], response.status_code)
    body = response.content.decode()
    # The error stands beside its field (or above the form when it is about the whole form).
    assert "field-error" in body or "form-errors" in body, (field, form[field])
    assert _payments(org) == 0


@pytest.mark.parametrize("payment_id", ["0", "99999999", "9" * 30])
def test_add_credit_steps_for_payments_that_do_not_exist_are_404(owner_client, api, payment_id):
    slug = api["org"].slug
    for url in (
        f"/o/{slug}/finance/add/{payment_id}/confirm/",
        f"/o/{slug}/finance/add/{payment_id}/",
    ):
        TRIED["add-credit steps"] += 1
        assert owner_client.get(url).status_code == 404
        assert owner_client.post(url).status_code in {404, 405}


# --- The read API's parameters ------------------------------------------------------------

READ_ENDPOINTS = {
    "/api/v1/account/worker-sessions": ("start_date", "end_date"),
    "/api/v1/account/queries-per-model": ("start_date", "end_date", "page", "page_size"),
    "/api/v1/usage/llm": ("org_id", "start_date", "end_date", "page", "page_size"),
    "/api/v1/usage/llm/organization/{org}/summary": ("start_date", "end_date"),
    "/api/v1/usage/matching": ("org_id", "task", "start_date", "end_date", "page", "page_size"),
}
GOOD_PARAMS = {"start_date": "0", "end_date": "1"}
bad_parameter_values = st.one_of(
    st.sampled_from(["-1", "NaN", "nan", "inf", "-inf", "1e309", "1.5", "", " ", "0x10", "١٢",
                     "9" * 40, "-" + "9" * 40, "253402300800000", "\x00", "true", "null",
                     "2024-02-30", "2024-13-01", "0000-01-01", "9999-12-31T23:59:59-23:59",
                     "2024-03-10T02:30:00", "+", "%", "[]"]),
    web_text(max_size=20),
    st.integers(min_value=-(10**30), max_value=10**30).map(str),
)  # fmt: skip


@FUZZ
@given(
    endpoint=st.sampled_from(sorted(READ_ENDPOINTS)),
    data=st.data(),
)
def test_read_api_parameters_are_a_400_naming_them_never_a_500(client, api, endpoint, data):
    org = api["org"]
    names = READ_ENDPOINTS[endpoint]
    chosen = data.draw(st.lists(st.sampled_from(names), min_size=1, max_size=3, unique=True))
    params = {name: data.draw(bad_parameter_values) for name in chosen}
    if "start_date" in names and endpoint.startswith("/api/v1/account"):
        params = {**GOOD_PARAMS, **params}
    url = endpoint.format(org=org.pk) + "?" + urlencode(params)
    response = client.get(url, headers=api["headers"])
    TRIED["read-API parameter sets"] += 1
    assert response.status_code in {200, 400, 404}, (url, response.status_code, response.content)
    body = response.json()
    if response.status_code == 400:
        assert body["error"] == "invalid_parameter" and body["field"] in params, (url, body)
    if response.status_code == 404:  # only another organization's id
        assert "org_id" in params, (url, body)


def test_a_session_token_reads_with_the_same_refusals(client, api):
    """The other credential goes through the same parameter parsing."""
    member = make_member(org=api["org"], role=Role.MEMBER)
    secret = session_token_issue(user=member.user, org=api["org"]).secret
    response = client.get(
        "/api/v1/usage/llm?start_date=2024-02-30", headers={"Authorization": f"Bearer {secret}"}
    )
    TRIED["read-API parameter sets"] += 1
    assert response.status_code == 400 and response.json()["field"] == "start_date"


@pytest.mark.parametrize("url", WRITE_AND_BODY_ENDPOINTS)
@pytest.mark.parametrize("body", [b'{"credits": "\xff\xfe"}', b"\x00\x01", b"{'single': 1}"])
def test_every_api_body_that_is_not_utf8_json_is_a_400_in_json(client, api, url, body):
    response = client.post(url, body, content_type="application/json", headers=api["headers"])
    TRIED["bodies"] += 1
    assert response.status_code == 400, (url, response.status_code, response.content[:200])
    assert response.json()["error"] in {"invalid_json", "invalid_body"}
