import requests

from .conftest import S3, payload, session_for, sha256


def test_live_server_takes_an_upload_over_http(live_tus: str, s3: S3) -> None:
    data = payload(6 * 1024 * 1024 + 5)
    created = requests.post(live_tus, headers={"Tus-Resumable": "1.0.0", "Upload-Length": str(len(data))})
    assert created.status_code == 201
    url = created.headers["Location"]
    patched = requests.patch(
        url,
        data=data,
        headers={"Tus-Resumable": "1.0.0", "Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"},
    )
    assert patched.status_code == 204, patched.text
    assert s3.sha256(session_for(url).key) == sha256(data)
