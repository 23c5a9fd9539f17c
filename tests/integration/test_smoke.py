import pytest


@pytest.mark.gen_test
async def test_create_and_list_project(botical_app, make_user):
    alice = await make_user("alice")
    created = await alice.api.post("/api/projects", {"name": "Demo"})
    assert created.status == 201, created.body
    listed = await alice.api.get("/api/projects")
    assert [p["id"] for p in listed.body["items"]] == [created.body["id"]]
