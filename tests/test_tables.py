"""Tables that tokenhub.py and mock_server.py each hold (each file stands alone, so
neither imports the other's): they must say the same thing."""

import mock_server
import tokenhub


def test_every_error_type_the_mock_sends_means_the_same_status_to_the_client():
    for kind, status in mock_server._KIND_STATUS.items():
        assert tokenhub._ERROR_TYPE_STATUS.get(kind) == status, kind
    for status, kind in mock_server._STATUS_KINDS.items():
        assert kind in tokenhub._ERROR_TYPE_STATUS, (status, kind)


def test_the_regions_are_the_same_hosts():
    assert set(mock_server._REGION_ROOTS) == set(tokenhub._REGIONS)
    for name, root in mock_server._REGION_ROOTS.items():
        assert tokenhub._REGIONS[name][0] == root, name


def test_the_model_tables_list_the_same_models():
    assert [(model, owner) for model, _, owner in mock_server.MODELS] == list(tokenhub._DOCUMENTED_MODELS)


def test_the_protocols_are_the_same_and_served_at_the_same_routes():
    assert set(mock_server._MOCK_PROTOCOLS) == set(tokenhub._PROTOCOLS)
    for name, protocol in tokenhub._PROTOCOLS.items():
        assert mock_server._MOCK_PROTOCOLS[name].route == protocol.path


def test_a_timeout_error_event_is_a_504_on_both_sides(mock):
    client = tokenhub.TokenHub(api_key="k", base_url=mock.url, max_retries=0)
    stream = client.chat.completions.create(model="m", messages=[{"role": "user", "content": "Hi"}], stream=True,
                                            extra_headers={"X-Mock-Fault": "error-after=2,type=timeout_error"})
    try:
        list(stream)
    except tokenhub.InternalServerError as error:
        assert error.status_code == 504
    else:
        raise AssertionError("the in-stream timeout_error was not raised")
