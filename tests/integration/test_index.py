import pytest


@pytest.mark.gen_test
async def test_landing_page_needs_no_token_and_keeps_it_out_of_referrers(api):
    response = await api.get("/")
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/html")
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert "sessionStorage" in response.body
    assert "history.replaceState" in response.body
