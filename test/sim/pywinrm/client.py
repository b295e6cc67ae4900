"""Drives pywinrm (Debian python3-winrm 0.3.0) against the wsman emulator.

Usage: pywinrm_client.py '<json spec>'; prints one JSON object. Output bytes
are base64 so the Go test compares them exactly.
"""
import base64
import json
import sys

import winrm
from winrm.protocol import Protocol


def b64(data):
    return base64.b64encode(data).decode("ascii")


def protocol(spec, **kw):
    args = dict(
        endpoint=spec["url"],
        transport=spec.get("transport", "plaintext"),
        username=spec.get("user", "admin"),
        password=spec.get("password", "lab-pass"),
        operation_timeout_sec=spec.get("operation_timeout", 20),
        read_timeout_sec=spec.get("read_timeout", 30),
        server_cert_validation=spec.get("cert_validation", "validate"),
    )
    if spec.get("ca"):
        args["ca_trust_path"] = spec["ca"]
    args.update(kw)
    return Protocol(**args)


def run_protocol(spec):
    """Runs one command through Protocol, the way Session.run_cmd does."""
    p = protocol(spec)
    shell = p.open_shell(idle_timeout=spec.get("idle_timeout"))
    cmd = p.run_command(shell, spec["command"], spec.get("args", []))
    out, err, code = p.get_command_output(shell, cmd)
    p.cleanup_command(shell, cmd)
    p.close_shell(shell)
    return {"stdout": b64(out), "stderr": b64(err), "code": code}


def main():
    spec = json.loads(sys.argv[1])
    kind = spec["kind"]
    try:
        if kind == "run_cmd":
            s = winrm.Session(spec["url"], auth=(spec.get("user", "admin"), spec.get("password", "lab-pass")),
                              transport=spec.get("transport", "plaintext"),
                              server_cert_validation=spec.get("cert_validation", "validate"),
                              **({"ca_trust_path": spec["ca"]} if spec.get("ca") else {}))
            r = s.run_cmd(spec["command"], spec.get("args", []))
            result = {"stdout": b64(r.std_out), "stderr": b64(r.std_err), "code": r.status_code}
        elif kind == "run_ps":
            s = winrm.Session(spec["url"], auth=(spec.get("user", "admin"), spec.get("password", "lab-pass")),
                              transport="plaintext")
            r = s.run_ps(spec["script"])
            result = {"stdout": b64(r.std_out), "stderr": b64(r.std_err), "code": r.status_code}
        elif kind == "protocol":
            result = run_protocol(spec)
        elif kind == "orphan":
            # A client that dies mid-command: it starts the command and
            # exits without a Receive, Signal or Delete.
            p = protocol(spec)
            shell = p.open_shell(idle_timeout=spec.get("idle_timeout"))
            p.run_command(shell, spec["command"], spec.get("args", []))
            result = {}
        elif kind == "quota":
            p = protocol(spec)
            shells = []
            try:
                for _ in range(spec["count"]):
                    shells.append(p.open_shell())
                result = {"opened": len(shells)}
            except Exception as e:
                result = {"opened": len(shells), "error": type(e).__name__, "message": str(e)}
            for s in shells:
                p.close_shell(s)
        else:
            raise ValueError("unknown kind " + kind)
    except Exception as e:  # reported, not raised: the Go test asserts on it
        result = {"error": type(e).__name__, "message": str(e)}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
