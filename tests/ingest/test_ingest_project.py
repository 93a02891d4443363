"""Every stored record carries the project of the credential that sent it
(docs/projects.md): the key's, else (no key) a job's controller's, else the Default."""

import pytest

from accounts.projects import project_default_for
from ingest.services.ingest import usage_records_ingest
from tests.factories import grant_credits, make_api_key, make_controller, make_org, make_project
from tests.ingest.test_ingest import good_batch
from usage.models import IngestBatch, Job, MatchingRun, Query, WorkerSession

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("frozen")]

RECORDS = (Query, WorkerSession, MatchingRun, Job)


@pytest.fixture
def org():
    org = make_org()
    grant_credits(org=org, amount="100")
    return org


def _projects_of(org) -> dict[str, int]:
    return {
        r.client_id: r.project_id
        for model in RECORDS
        for r in model.objects.filter(organization=org)
    }


def test_records_and_batch_take_the_sending_keys_project(org):
    research = make_project(org=org, name="Research")
    make_controller(org=org, name="dgx-01")  # in the Default project: the key still wins
    key, _ = make_api_key(org=org, project=research)
    result = usage_records_ingest(org=org, records=good_batch(), api_key=key)
    assert len(result.accepted) == len(good_batch())
    assert set(_projects_of(org).values()) == {research.pk}
    assert len(_projects_of(org)) == len(good_batch())
    assert IngestBatch.objects.get(pk=result.batch_id).project_id == research.pk


def test_a_record_cannot_choose_its_project(org):
    research, other = make_project(org=org, name="Research"), make_project(org=org, name="Ops")
    key, _ = make_api_key(org=org, project=research)
    record = {**good_batch()[0], "project": other.pk, "project_id": other.pk}
    result = usage_records_ingest(org=org, records=[record], api_key=key)
    assert len(result.accepted) == 1  # fields the wire shape lacks are ignored
    assert Query.objects.get(organization=org).project_id == research.pk


def test_without_a_key_a_job_is_its_controllers_project_and_the_rest_the_default(org):
    research = make_project(org=org, name="Research")
    make_controller(org=org, name="dgx-01", project=research)
    result = usage_records_ingest(org=org, records=good_batch(), api_key=None)
    assert len(result.accepted) == len(good_batch())
    default = project_default_for(org=org)
    projects = _projects_of(org)
    assert projects.pop("j-1") == research.pk  # the job sent for dgx-01
    assert set(projects.values()) == {default.pk}
    assert IngestBatch.objects.get(pk=result.batch_id).project_id == default.pk


def test_a_controller_is_registered_in_the_default_project_unless_given_one(org):
    research = make_project(org=org, name="Research")
    plain, _ = make_controller(org=org)
    placed, _ = make_controller(org=org, project=research)
    assert plain.project_id == project_default_for(org=org).pk
    assert placed.project_id == research.pk
    with pytest.raises(ValueError, match="not one of this organization's"):
        make_controller(org=org, project=make_project(org=make_org(), name="Elsewhere"))
