"""JupyterLab, as `make lab` starts it: the installed Jupyter lists the Rust
kernel, the server answers on loopback, and it starts a Rust kernel."""
import json
import os
import pathlib
import socket
import subprocess
import time
import urllib.error
import urllib.request

ROOT = pathlib.Path(__file__).resolve().parents[2]
VENV = pathlib.Path(os.environ.get("VENV", ROOT / ".venv"))
if not VENV.is_absolute():
    VENV = ROOT / VENV
TOKEN = "test-lab-token"


def jupyter_env():
    return dict(os.environ, JUPYTER_PATH=str(VENV / "share" / "jupyter"))


def test_the_rust_kernel_is_registered():
    r = subprocess.run([str(VENV / "bin" / "jupyter"), "kernelspec", "list", "--json"],
                       env=jupyter_env(), capture_output=True, text=True, check=True)
    specs = json.loads(r.stdout)["kernelspecs"]
    assert "rust" in specs, sorted(specs)
    spec = specs["rust"]["spec"]
    assert spec["language"] == "rust"
    assert "evcxr" in spec["argv"][0], spec["argv"]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url, method="GET", body=None):
    req = urllib.request.Request(url, method=method, data=body,
                                 headers={"Authorization": f"token {TOKEN}",
                                          "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return r.status, r.read().decode("utf-8", "replace")


def test_jupyterlab_starts_on_loopback_and_runs_a_rust_kernel(tmp_path):
    port = free_port()
    env = dict(os.environ, LAB_PORT=str(port), JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"),
               JUPYTER_CONFIG_DIR=str(tmp_path / "config"))
    proc = subprocess.Popen([str(ROOT / "scripts" / "lab.sh"), f"--IdentityProvider.token={TOKEN}",
                             "--ServerApp.port_retries=0"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                status, _ = get(f"{base}/api/status")
                if status == 200:
                    break
            except (urllib.error.URLError, ConnectionError):
                pass
            assert proc.poll() is None, proc.stdout.read()
            assert time.monotonic() < deadline, "JupyterLab did not answer in 90 s"
            time.sleep(0.5)
        status, page = get(f"{base}/lab")
        assert status == 200 and "JupyterLab" in page
        # The notebooks folder is the server's root.
        _, listing = get(f"{base}/api/contents")
        names = {c["name"] for c in json.loads(listing)["content"]}
        assert {"01_eda.ipynb", "02_regression.ipynb", "03_segmentation.ipynb"} <= names, names
        _, specs = get(f"{base}/api/kernelspecs")
        assert "rust" in json.loads(specs)["kernelspecs"]
        # A Rust kernel starts (it compiles nothing until a cell runs) and
        # stays alive. Over REST its state may stay "starting" until a
        # notebook connects, so the check is that it never dies.
        status, k = get(f"{base}/api/kernels", "POST", json.dumps({"name": "rust"}).encode())
        assert status == 201
        kid = json.loads(k)["id"]
        end = time.monotonic() + 8
        while time.monotonic() < end:
            status, k = get(f"{base}/api/kernels/{kid}")
            assert status == 200
            state = json.loads(k)["execution_state"]
            assert state in ("starting", "idle", "busy"), state
            time.sleep(0.5)
        status, _ = get(f"{base}/api/kernels/{kid}", "DELETE")
        assert status == 204
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
