"""Shell exports pointing every vendor connection at the replay server (used by the local stack).

`eval "$(python -m gpubroker_provider.replay.connections http://127.0.0.1:8765)"` defines
AIRFLOW_CONN_GPUBROKER_<VENDOR> for each vendor, as Airflow's environment-variable connections.
"""

import json
import os
import shlex
import sys

from gpubroker_provider.replay.server import DEFAULT_KEY
from gpubroker.vendors import VENDORS


def exports(replay_url: str, key: str) -> list[str]:
    lines = []
    for v in VENDORS.values():
        conn = {"conn_type": v.conn_type, "host": f"{replay_url.rstrip('/')}/{v.slug}", "password": key}
        lines.append(f"export AIRFLOW_CONN_{v.default_conn_id.upper()}={shlex.quote(json.dumps(conn))}")
    return lines


if __name__ == "__main__":
    print("\n".join(exports(sys.argv[1], os.environ.get("GPUBROKER_REPLAY_KEY", DEFAULT_KEY))))
