"""Every process of the local stack listens on loopback only, and its credential files are private.

The stack's processes are found from `$K2F_STATE_DIR/run/<service>.pid` (each service runs in its own
process group, dev/lib.sh start_bg), with every descendant; their listening TCP sockets are read from
/proc/net/tcp and /proc/net/tcp6 and matched by inode to the processes' file descriptors.
"""

from __future__ import annotations

import ipaddress
import os
import stat
from dataclasses import dataclass
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

TCP_LISTEN = "0A"


@dataclass(frozen=True)
class Listener:
    service: str
    pid: int
    command: str
    address: str


def _proc_stat(pid: int) -> tuple[int, int, int]:
    """(parent pid, process group, session) of a running process."""
    text = Path(f"/proc/{pid}/stat").read_text()
    fields = text[text.rindex(")") + 2 :].split()
    return int(fields[1]), int(fields[2]), int(fields[3])


def _all_processes() -> dict[int, tuple[int, int, int]]:
    out = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                out[int(entry.name)] = _proc_stat(int(entry.name))
            except (FileNotFoundError, ProcessLookupError, ValueError):
                continue
    return out


def stack_processes(run_dir: Path) -> dict[int, str]:
    """pid -> service for every process of the stack: the recorded group leaders, their groups and children."""
    leaders = {}
    for pid_file in run_dir.glob("*.pid"):
        try:
            leaders[int(pid_file.read_text().strip())] = pid_file.stem
        except ValueError:
            continue
    processes = _all_processes()
    owner: dict[int, str] = {}
    for pid, (_, group, session) in processes.items():
        for key in (pid, group, session):
            if key in leaders:
                owner[pid] = leaders[key]
                break
    # Descendants that started a group or session of their own still belong to the service that forked them.
    changed = True
    while changed:
        changed = False
        for pid, (parent, _, _) in processes.items():
            if pid not in owner and parent in owner:
                owner[pid] = owner[parent]
                changed = True
    return owner


def _decode(hex_address: str) -> str:
    host, port = hex_address.split(":")
    raw = bytes.fromhex(host)
    # /proc/net prints the address as 32-bit words in host byte order (little-endian here).
    raw = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
    ip = ipaddress.ip_address(raw)
    if ip.version == 4:
        return f"{ip}:{int(port, 16)}"
    shown = f"::ffff:{ip.ipv4_mapped}" if ip.ipv4_mapped else str(ip)
    return f"[{shown}]:{int(port, 16)}"


def listening_sockets() -> dict[str, str]:
    """inode -> local address of every listening TCP socket (IPv4 and IPv6)."""
    out = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == TCP_LISTEN:
                out[fields[9]] = _decode(fields[1])
    return out


def stack_listeners(run_dir: Path) -> list[Listener]:
    sockets = listening_sockets()
    found = []
    for pid, service in stack_processes(run_dir).items():
        try:
            fds = list(Path(f"/proc/{pid}/fd").iterdir())
            command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()[:160]
        except (FileNotFoundError, PermissionError):
            continue
        for fd in fds:
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            inode = target[len("socket:[") : -1] if target.startswith("socket:[") else None
            if inode in sockets:
                found.append(Listener(service, pid, command, sockets[inode]))
    return found


def is_loopback(address: str) -> bool:
    ip = ipaddress.ip_address(address.rsplit(":", 1)[0].strip("[]"))
    if ip.version == 6 and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return ip.is_loopback


def test_address_decoding_and_loopback_rule():
    assert _decode("0100007F:1F90") == "127.0.0.1:8080"
    assert _decode("00000000:1F90") == "0.0.0.0:8080"
    assert _decode("00000000000000000000000000000000:1F90") == "[::]:8080"
    assert _decode("0000000000000000FFFF00000100007F:1F90") == "[::ffff:127.0.0.1]:8080"
    assert _decode("00000000000000000000000001000000:1F90") == "[::1]:8080"
    assert [is_loopback(a) for a in ("127.0.0.1:1", "[::1]:1", "[::ffff:127.0.0.1]:1")] == [True] * 3
    assert [is_loopback(a) for a in ("0.0.0.0:1", "[::]:1", "10.0.0.5:1", "[::ffff:0.0.0.0]:1")] == [False] * 4


def test_every_stack_process_listens_on_loopback_only(env):
    run_dir = Path(env["K2F_STATE_DIR"]) / "run"
    running = {p.stem for p in run_dir.glob("*.pid")}
    assert running, f"no stack running under {env['K2F_STATE_DIR']} (make up first)"
    listeners = stack_listeners(run_dir)
    # Each running service listens somewhere; finding none would mean this test lost track of it.
    assert {listener.service for listener in listeners} == running
    exposed = [listener for listener in listeners if not is_loopback(listener.address)]
    assert not exposed, "listening beyond loopback:\n" + "\n".join(
        f"  {x.service} pid {x.pid} on {x.address}: {x.command}" for x in exposed
    )


def _credential_files(env: dict[str, str]) -> list[Path]:
    state = Path(env["K2F_STATE_DIR"])
    return [
        state / "kafka" / "server.properties",  # the broker's JAAS line with the SASL user's password
        state / "airflow" / "simple_auth_manager_passwords.json.generated",  # the UI login
        state / "airflow" / "signing_keys.env",  # the components' JWT and session secrets
        state / "airflow" / "airflow.cfg",  # holds the Fernet key
        state / "data" / "secret_manager" / "secrets.json",  # the stand-in's secrets
    ]


def test_local_credential_files_are_readable_by_their_owner_only(env):
    wrong = {}
    for path in _credential_files(env):
        if not path.exists():
            continue  # that service is not part of this stack
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            wrong[str(path)] = oct(mode)
    checked = [p for p in _credential_files(env) if p.exists()]
    assert checked, "no credential file found: is the stack up?"
    assert not wrong, f"readable by group or others: {wrong}"
