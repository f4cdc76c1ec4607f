"""Projects laid out the way `zynd agent init --lang py` / `zynd service init --lang py` (npm `zyndai`)
writes them, and keypairs made by the Zynd SDK's own key functions.

The layout follows the real CLI: `<entity>.config.json` with the authored fields, `.env` holding the
absolute path of the keypair under `~/.zynd/`, `<entity>.py` and `payload.py` from the SDK's
templates, a `.well-known/agent-card.json` placeholder and `assets/`, and no `requirements.txt`.

The entry and payload files come from the SDK's own templates when `ZYND_SDK_TEMPLATES` names the
`src/templates` folder of a checkout of the public TypeScript SDK (the CLI's sources); without it,
from small programs of our own on the same SDK API (the SDK's templates are not ours to ship).
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

# Our stand-ins: the calls the real templates make (config from the JSON file and the ZYND_* env,
# a payload model, `start()`, then wait for a signal), without any framework.
_PAYLOAD = '''"""Request and response schemas for __AGENT_NAME__."""

from pydantic import BaseModel

from zyndai_agent import AgentPayload

MAX_FILE_SIZE_BYTES = 1024 * 1024


class RequestPayload(AgentPayload):
    pass


class ResponsePayload(BaseModel):
    response: str
'''

_ENTRY = '''"""__NAME__ on the Zynd network, started the way the scaffold's entry starts it."""

import json
import os
import signal

from dotenv import load_dotenv
from zyndai_agent import __CONFIG__, __CLASS__, resolve_registry_url

from payload import MAX_FILE_SIZE_BYTES, RequestPayload, ResponsePayload

load_dotenv()
with open("__ENTITY__.config.json") as f:
    cfg = json.load(f)

entity = __CLASS__(
    config=__CONFIG__(
        name=cfg["name"],
        description=cfg.get("description", ""),
        version=cfg.get("version", "0.1.0"),
        category=cfg.get("category", "general"),
        tags=cfg.get("tags", []),
        server_host=cfg.get("server_host", "0.0.0.0"),
        server_port=int(os.environ.get("ZYND_SERVER_PORT") or cfg.get("server_port") or 5000),
        auth_mode=cfg.get("auth_mode", "permissive"),
        registry_url=resolve_registry_url(from_config_file=cfg.get("registry_url")),
        keypair_path=os.environ.get("ZYND___KIND___KEYPAIR_PATH", cfg.get("keypair_path")),
        entity_url=os.environ.get("ZYND_ENTITY_URL", cfg.get("entity_url")),
        entity_index=cfg.get("entity_index", 0),
    ),
    payload_model=RequestPayload,
    output_model=ResponsePayload,
    max_body_bytes=MAX_FILE_SIZE_BYTES,
)
entity.on_message(lambda inbound, task: {"response": f"Hello from __NAME__: {inbound.message.content}"})
entity.start()
print("__NAME__ is running", flush=True)
signal.pause()
'''

TEMPLATES_ENV = "ZYND_SDK_TEMPLATES"


def _sources(entity: str, name: str) -> tuple[str, str, str]:
    """(entry, payload, where they came from)."""
    templates = os.environ.get(TEMPLATES_ENV)
    if templates:
        root = Path(templates)
        entry_tpl = (root / "py" / ("custom.py.tpl" if entity == "agent" else "service.py.tpl")).read_text()
        placeholder = "__AGENT_NAME__" if entity == "agent" else "__SERVICE_NAME__"
        payload = (root / "py" / "payload.py.tpl").read_text().replace("__AGENT_NAME__", name)
        return entry_tpl.replace(placeholder, name), payload, f"the SDK's templates in {root}"
    cls, config = ("ZyndAIAgent", "AgentConfig") if entity == "agent" else ("ZyndService", "ServiceConfig")
    entry = (_ENTRY.replace("__CLASS__", cls).replace("__CONFIG__", config).replace("__ENTITY__", entity)
             .replace("__KIND__", entity.upper()).replace("__NAME__", name))  # fmt: skip
    return entry, _PAYLOAD.replace("__AGENT_NAME__", name), "stand-ins on the SDK's API"


def scaffold(root: Path, *, entity: str, name: str, home: Path, registry_url: str = "https://dns01.zynd.ai",
             entity_index: int = 0) -> str:  # fmt: skip
    """Writes the project into `root` (the keypair path in `.env` points under `home`, as the CLI's
    does under `~`); returns where the entry and payload came from."""
    root.mkdir(parents=True, exist_ok=True)
    config: dict[str, Any] = {
        "name": name, "description": f"{name} {entity}", "version": "0.1.0", "category": "general", "tags": [],
        "registry_url": registry_url, "server_host": "0.0.0.0", "server_port": 5000, "auth_mode": "permissive",
        "entity_index": entity_index,
        "skills": [{"id": "default", "name": name, "description": f"{name}'s primary capability", "tags": [],
                    "examples": []}],
    }  # fmt: skip
    (root / f"{entity}.config.json").write_text(json.dumps(config, indent=2))
    keypair_path = home / ".zynd" / f"{entity}s" / name.lower().replace(" ", "-") / "keypair.json"
    (root / ".env").write_text(f"ZYND_{entity.upper()}_KEYPAIR_PATH={keypair_path}\n\n")
    entry, payload, origin = _sources(entity, name)
    (root / f"{entity}.py").write_text(entry)
    (root / "payload.py").write_text(payload)
    (root / ".well-known").mkdir(exist_ok=True)
    (root / ".well-known" / "agent-card.json").write_text(json.dumps({"_note": "Auto-generated"}, indent=2))
    (root / "assets").mkdir(exist_ok=True)
    (root / "assets" / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    return origin


_KEYGEN = """
import json, tempfile
import sys
from zyndai_agent.ed25519_identity import derive_agent_keypair, generate_entity_id, generate_keypair, save_keypair
developer = generate_keypair()
kp = derive_agent_keypair(developer.private_key, 0)
path = tempfile.mktemp()
save_keypair(kp, path, {"developer_public_key": developer.public_key_b64, "index": 0})
entity_id = generate_entity_id(kp.public_key_bytes, sys.argv[1])
print(json.dumps({"keypair": json.load(open(path)), "entity_id": entity_id}))
"""


def sdk_keypair(image: str, entity: str) -> tuple[bytes, str]:
    """A keypair derived from a fresh developer key by the SDK inside `image` (the agent base, which
    has the SDK); returns the keypair file's bytes and the entity id the SDK gives it."""
    out = subprocess.run(["docker", "run", "--rm", "--network", "none", image, "python", "-c", _KEYGEN, entity],
                         capture_output=True, text=True, timeout=120, check=True).stdout  # fmt: skip
    result = json.loads(out.strip().splitlines()[-1])
    return json.dumps(result["keypair"], indent=2).encode(), str(result["entity_id"])
