#!/usr/bin/env python3
"""A vla-eval benchmark client for testing reel's policy server against the harness's protocol.

Written for reel's tests from the published code of the vla-evaluation-harness
(github.com/allenai/vla-evaluation-harness, Apache-2.0), not from reel's Go client:
  - src/vla_eval/protocol/messages.py    message framing: msgpack map {type, payload, seq, timestamp}
  - src/vla_eval/protocol/numpy_codec.py ndarrays as {"__ndarray__": True, data, dtype, shape}
  - src/vla_eval/protocol/image_codec.py HWC uint8 arrays as {"__image__": True, format: png, ...}
  - src/vla_eval/connection.py           websockets.connect(compression=None, max_size=None,
                                         ping_interval=None), HELLO handshake, act() = send + recv
  - src/vla_eval/runners/sync_runner.py  episode_start {"task": ...}, act per step, episode_end
  - src/vla_eval/orchestrator.py         round-robin shards of (task, episode) items, failures
                                         isolated per episode with a failure_reason
  - src/vla_eval/benchmarks/libero/benchmark.py  the LIBERO observation (one 256x256 agentview
                                         image, task_description, no state by default) and its
                                         step() check of a 7-D action
  - src/vla_eval/results/collector.py    per-task and overall mean_success

Needs Python 3 with msgpack, websockets, numpy and PIL (Debian: python3-msgpack python3-websockets
python3-numpy python3-pil). Every mode prints one JSON object on stdout.
"""

import argparse
import asyncio
import inspect
import io
import json
import sys
import time
import urllib.error
import urllib.request

import msgpack
import numpy as np
import websockets
from PIL import Image

PROTOCOL_VERSION = 1
CLIENT_VERSION = "harness-style-test-client"
IMAGE_FORMAT = "png"  # the harness's default image encoding


# ---- codec (numpy_codec.py / image_codec.py) ----------------------------------------------


def _looks_like_image(a):
    return a.ndim == 3 and a.dtype == np.uint8 and a.shape[2] in (1, 3, 4)


def _encode(obj):
    if isinstance(obj, np.ndarray):
        if IMAGE_FORMAT != "raw" and _looks_like_image(obj):
            buf = io.BytesIO()
            Image.fromarray(obj).save(buf, format="PNG")
            return {"__image__": True, "format": "png", "data": buf.getvalue(), "shape": list(obj.shape)}
        return {"__ndarray__": True, "data": obj.tobytes(), "dtype": obj.dtype.str, "shape": list(obj.shape)}
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    return obj


def _decode(obj):
    if "__image__" in obj:
        if obj["format"] == "raw":
            return np.frombuffer(obj["data"], dtype=np.dtype(obj["dtype"])).reshape(obj["shape"]).copy()
        return np.array(Image.open(io.BytesIO(obj["data"])))
    if "__ndarray__" not in obj:
        return obj
    dt = np.dtype(obj["dtype"])
    if dt.kind not in "biuf":
        raise ValueError(f"disallowed dtype {dt}")
    return np.frombuffer(obj["data"], dtype=dt).reshape(obj["shape"]).copy()


def pack(typ, payload, seq):
    msg = {"type": typ, "payload": payload, "seq": seq, "timestamp": time.time()}
    return msgpack.packb(msg, default=_encode, use_bin_type=True)


def unpack(data):
    raw = msgpack.unpackb(data, object_hook=_decode, raw=False)
    if not isinstance(raw, dict):
        raise ValueError(f"expected a msgpack map, got {type(raw).__name__}")
    missing = [k for k in ("type", "payload", "seq", "timestamp") if k not in raw]
    if missing:
        raise ValueError(f"message missing fields {missing}")
    if raw["type"] not in ("hello", "observation", "action", "episode_start", "episode_end", "error"):
        raise ValueError(f"unknown message type {raw['type']!r}")
    return raw


def jsonable(v):
    """Plain JSON values of a decoded payload (arrays become lists with their dtype and shape)."""
    if isinstance(v, dict):
        return {k: jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [jsonable(x) for x in v]
    if isinstance(v, np.ndarray):
        return {"dtype": v.dtype.str, "shape": list(v.shape), "values": v.astype(np.float64).ravel().tolist()}
    if isinstance(v, bytes):
        return f"<{len(v)} bytes>"
    return v


# ---- connection (connection.py) ---------------------------------------------------------


class ServerError(RuntimeError):
    pass


class Connection:
    def __init__(self, url, timeout=30.0):
        self.url, self.timeout = url, timeout
        self.ws, self.seq, self.server_info = None, 0, {}

    async def connect(self, benchmark=None, protocol_version=PROTOCOL_VERSION):
        self.ws = await asyncio.wait_for(
            websockets.connect(self.url, compression=None, max_size=None, ping_interval=None), self.timeout
        )
        hello = {"harness_version": CLIENT_VERSION, "protocol_version": protocol_version}
        if benchmark:
            hello["benchmark"] = benchmark
        await self.send("hello", hello)
        reply = await self.recv()
        if reply["type"] != "hello":
            raise RuntimeError(f"expected a hello reply, got {reply['type']}: {reply['payload']}")
        self.server_info = reply["payload"]

    async def close(self):
        if self.ws is not None:
            await self.ws.close()
            self.ws = None

    async def send(self, typ, payload):
        self.seq += 1
        await self.ws.send(pack(typ, payload, self.seq))
        return self.seq

    async def recv(self):
        return unpack(await asyncio.wait_for(self.ws.recv(), self.timeout))

    async def start_episode(self, config):
        await self.send("episode_start", config)

    async def end_episode(self, result):
        await self.send("episode_end", result)

    async def act(self, obs):
        seq = await self.send("observation", obs)
        reply = await self.recv()
        if reply["type"] == "error":
            raise ServerError(f"Server error: {reply['payload']}")
        if reply["seq"] != seq:
            raise RuntimeError(f"seq mismatch: sent {seq}, received {reply['seq']}")
        return reply["payload"]


# ---- a LIBERO-shaped benchmark (benchmarks/libero/benchmark.py) ------------------------------

LIBERO_TASKS = [  # LIBERO-spatial-style instructions; the first is longer than a tiny policy reads
    "pick up the black bowl between the plate and the ramekin and place it on the plate",
    "pick up the black bowl on the stove and place it on the plate",
    "pick up the black bowl next to the cookie box and place it on the plate",
]


class LiberoShaped:
    """One 256x256 agentview camera, the instruction, no state; actions must be 7-D. It takes no
    send_state parameter, so the orchestrator's merge of the server's observation_params leaves
    it without a state."""

    # The robot's shape: LIBERO's by default; --camera/--width/--height/--state-dim/--action-dim
    # make a benchmark shaped like another robot (a state of state_dim values is then always sent).
    camera, width, height, state_dim, action_dim = "agentview", 256, 256, 0, 7

    def __init__(self, n_tasks, max_steps, seed):
        self.tasks = [{"name": LIBERO_TASKS[i % len(LIBERO_TASKS)], "suite": "libero_shaped", "task_id": i} for i in range(n_tasks)]
        self.max_steps, self.seed = max_steps, seed
        self.send_state = False

    def start(self, task, episode):
        self.rng = np.random.default_rng([self.seed, task["task_id"], episode])
        self.task, self.steps, self.moved = task, 0, 0.0

    def observation(self):
        img = self.rng.integers(0, 256, size=(self.height, self.width, 3), dtype=np.uint8)
        obs = {"images": {self.camera: img}, "task_description": self.task["name"]}
        if self.state_dim:  # the robot's proprioception
            obs["states"] = self.rng.normal(size=self.state_dim).astype(np.float32)
        elif self.send_state:  # LIBERO's 8-D state: eef position 3, axis-angle 3, gripper qpos 2
            obs["states"] = np.arange(8, dtype=np.float64) + 10 * self.steps
        return obs

    def apply(self, action):
        raw = action.get("actions", action.get("action"))
        raw = np.asarray(raw)
        if raw.shape != (self.action_dim,) or raw.dtype != np.float32:
            raise AssertionError(f"Action dimension mismatch: got shape {raw.shape} dtype {raw.dtype}, expected ({self.action_dim},) float32")
        if not np.all(np.isfinite(raw)):
            raise AssertionError(f"non-finite action {raw}")
        self.steps += 1
        self.moved += float(raw[0])

    def done(self):
        return self.steps >= self.max_steps

    def result(self):
        return {"success": self.moved > 0}


class LiberoShapedWithState(LiberoShaped):
    """The same with LIBERO's send_state parameter, which the orchestrator sets from the server's
    observation_params."""

    def __init__(self, n_tasks, max_steps, seed, send_state=False):
        super().__init__(n_tasks, max_steps, seed)
        self.send_state = send_state


async def run_episode(bench, task, ep, conn, warnings):
    """SyncEpisodeRunner.run_episode: episode_start, act per step, episode_end."""
    bench.start(task, ep)
    t0 = time.time()
    task_info = {k: v for k, v in task.items() if isinstance(v, (str, int, float, bool, list))}
    await conn.start_episode({"task": {**task_info, "episode_idx": ep}})
    step = 0
    while True:
        action = await conn.act(bench.observation())
        for w in (action.get("metadata") or {}).get("warnings", []):
            warnings.add(w)
        bench.apply(action)
        step += 1
        if bench.done():
            break
    result = {"metrics": bench.result(), "steps": step, "elapsed_sec": round(time.time() - t0, 3)}
    await conn.end_episode(result)
    return result


async def libero(args):
    conn = Connection(args.url, timeout=args.timeout)
    await conn.connect(benchmark="libero_shaped")
    # Orchestrator._run_benchmark_inner: the server's observation_params fill the benchmark's
    # constructor parameters that the config leaves unset and the constructor accepts.
    cls = LiberoShapedWithState if args.state_param else LiberoShaped
    cls.camera, cls.width, cls.height = args.camera, args.width, args.height
    cls.state_dim, cls.action_dim = args.state_dim, args.action_dim
    params = {"n_tasks": args.tasks, "max_steps": args.steps, "seed": args.seed}
    sig = inspect.signature(cls.__init__)
    auto = {k: v for k, v in (conn.server_info.get("observation_params") or {}).items() if k not in params and k in sig.parameters}
    bench = cls(**params, **auto)
    items = [(ti, t, ep) for ti, t in enumerate(bench.tasks) for ep in range(args.episodes_per_task)]
    if args.num_shards:
        items = [w for i, w in enumerate(items) if i % args.num_shards == args.shard_id]
    rows, warnings, failures = [], set(), 0
    for ti, task, ep in items:
        row = {"benchmark": "libero_shaped", "task": task["name"], "episode_id": ep, "suite": task["suite"]}
        try:
            res = await run_episode(bench, task, ep, conn, warnings)
            row.update(res)
        except Exception as e:  # the orchestrator isolates every episode's failure
            failures += 1
            reason = "timeout" if isinstance(e, asyncio.TimeoutError) else (
                "connection_closed" if isinstance(e, websockets.exceptions.ConnectionClosed) else "exception")
            row.update({"metrics": {"success": False}, "steps": bench.steps, "elapsed_sec": 0.0,
                        "failure_reason": reason, "failure_detail": f"{type(e).__name__}: {e}"})
            if reason != "exception":
                await conn.close()
                await conn.connect(benchmark="libero_shaped")
        rows.append(row)
    await conn.close()
    with open(args.out, "w") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")
    return {"episodes": len(rows), "failures": failures, "warnings": sorted(warnings), "auto_configured": auto,
            "failure_details": [r.get("failure_detail") for r in rows if r.get("failure_reason")],
            "server_info": jsonable(conn.server_info)}


# ---- the other modes ------------------------------------------------------------------------


def agentview(size, seed):
    return np.random.default_rng(seed).integers(0, 256, size=(size, size, 3), dtype=np.uint8)


async def hello(args):
    conn = Connection(args.url)
    await conn.connect(benchmark="libero_shaped", protocol_version=args.protocol_version)
    await conn.close()
    return jsonable(conn.server_info)


async def batch(args):
    """Several sessions send one observation each at the same moment; args.obs holds each
    session's observation as JSON: {"camera": name, "size": n, "instruction": s, "state": [...]}."""
    specs = json.loads(args.obs)
    conns = [Connection(args.url) for _ in specs]
    for c in conns:
        await c.connect()

    async def one(i, c, spec):
        obs = {"images": {spec.get("camera", "agentview"): agentview(spec.get("size", 16), i)},
               "task_description": spec.get("instruction", "pick up the red square")}
        if "state" in spec:
            obs["states"] = np.asarray(spec["state"], dtype=np.float32)
        seq = await c.send("observation", obs)
        reply = await c.recv()
        return {"session": i, "type": reply["type"], "seq_ok": reply["seq"] == seq, "payload": jsonable(reply["payload"])}

    out = await asyncio.gather(*(one(i, c, s) for i, (c, s) in enumerate(zip(conns, specs))))
    for c in conns:
        await c.close()
    return {"replies": out}


async def f16(args):
    """An observation whose state is a float16 array ("<f2"); returns the action."""
    conn = Connection(args.url)
    await conn.connect()
    state = np.asarray(json.loads(args.state), dtype=np.float16)
    reply = await conn.act({"images": {"agentview": agentview(16, 1)}, "task_description": "push the cube", "states": state})
    await conn.close()
    return {"sent_dtype": state.dtype.str, "sent_as_float32": state.astype(np.float32).astype(np.float64).tolist(),
            "action": jsonable(reply)}


async def big(args):
    """An observation padded to about args.mib MiB with a bytes field; returns the reply's type."""
    conn = Connection(args.url, timeout=120)
    await conn.connect()
    obs = {"images": {"agentview": agentview(16, 1)}, "task_description": "push the cube",
           "padding": b"\0" * int(args.mib * (1 << 20))}
    seq = await conn.send("observation", obs)
    reply = await conn.recv()
    await conn.close()
    return {"type": reply["type"], "seq_ok": reply["seq"] == seq, "payload": jsonable(reply["payload"])}


def config(args):
    """GET or POST /config as the harness's tools use it; args.requests is a JSON list of
    {"method": "GET"|"POST", "query": "k=v&...", "body": "json"} made one after another."""
    base = args.url.replace("ws://", "http://").rstrip("/")
    out = []
    for r in json.loads(args.requests):
        url = base + "/config" + (("?" + r["query"]) if r.get("query") else "")
        data = r["body"].encode() if r.get("body") else None
        req = urllib.request.Request(url, data=data, method=r.get("method", "GET"))
        if data:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                out.append({"status": resp.status, "body": json.loads(resp.read())})
        except urllib.error.HTTPError as e:
            out.append({"status": e.code, "body": json.loads(e.read())})
    return {"responses": out}


def check_aggregate(args):
    """Recompute an aggregate's counts and mean_success from its episodes the way the harness's
    collector does, and compare with what the file says."""
    with open(args.file) as f:
        agg = json.load(f)
    problems, total, ok = [], 0, 0
    for t in agg["tasks"]:
        eps = t["episodes"]
        succ = [bool(e["metrics"]["success"]) for e in eps]
        if t["num_episodes"] != len(eps):
            problems.append(f"task {t['task']}: num_episodes {t['num_episodes']} != {len(eps)}")
        if eps and abs(t["mean_success"] - round(sum(succ) / len(succ), 4)) > 1e-9:
            problems.append(f"task {t['task']}: mean_success {t['mean_success']}")
        errs = sum(1 for e in eps if e.get("failure_reason"))
        if t.get("num_errors", 0) != errs:
            problems.append(f"task {t['task']}: num_errors {t.get('num_errors', 0)} != {errs}")
        if abs(t["avg_steps"] - sum(e.get("steps", 0) for e in eps) / max(1, len(eps))) > 1e-9:
            problems.append(f"task {t['task']}: avg_steps {t['avg_steps']}")
        total += len(eps)
        ok += sum(succ)
    if agg.get("num_episodes_total") != total:
        problems.append(f"num_episodes_total {agg.get('num_episodes_total')} != {total}")
    if total and abs(agg["mean_success"] - round(ok / total, 4)) > 1e-9:
        problems.append(f"mean_success {agg['mean_success']} != {round(ok / total, 4)}")
    for key in ("benchmark", "mode", "harness_version", "created_at", "tasks", "config", "metric_keys"):
        if key not in agg:
            problems.append(f"missing {key}")
    return {"ok": not problems, "problems": problems, "episodes": total, "successes": ok}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="mode", required=True)
    p = sub.add_parser("hello")
    p.add_argument("url")
    p.add_argument("--protocol-version", type=int, default=PROTOCOL_VERSION)
    p = sub.add_parser("libero")
    p.add_argument("url")
    p.add_argument("--tasks", type=int, default=2)
    p.add_argument("--episodes-per-task", type=int, default=2)
    p.add_argument("--steps", type=int, default=6)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--shard-id", type=int, default=0)
    p.add_argument("--num-shards", type=int, default=0)
    p.add_argument("--timeout", type=float, default=60.0)
    p.add_argument("--state-param", action="store_true", help="the benchmark takes LIBERO's send_state parameter")
    p.add_argument("--camera", default="agentview", help="the benchmark's camera (default LIBERO's)")
    p.add_argument("--width", type=int, default=256)
    p.add_argument("--height", type=int, default=256)
    p.add_argument("--state-dim", type=int, default=0, help="send a state of this many values (0: LIBERO's rules)")
    p.add_argument("--action-dim", type=int, default=7)
    p.add_argument("--out", required=True)
    p = sub.add_parser("batch")
    p.add_argument("url")
    p.add_argument("--obs", required=True)
    p = sub.add_parser("f16")
    p.add_argument("url")
    p.add_argument("--state", required=True)
    p = sub.add_parser("big")
    p.add_argument("url")
    p.add_argument("--mib", type=float, required=True)
    p = sub.add_parser("config")
    p.add_argument("url")
    p.add_argument("--requests", default='[{"method": "GET"}]')
    p = sub.add_parser("check-aggregate")
    p.add_argument("file")
    args = ap.parse_args()
    if args.mode == "config":
        out = config(args)
    elif args.mode == "check-aggregate":
        out = check_aggregate(args)
    else:
        out = asyncio.run({"hello": hello, "libero": libero, "batch": batch, "f16": f16, "big": big}[args.mode](args))
    json.dump(out, sys.stdout)
    sys.stdout.write("\n")
    if args.mode == "libero" and out["failures"]:
        sys.exit(1)
    if args.mode == "check-aggregate" and not out["ok"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
