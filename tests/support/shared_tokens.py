"""Execution environments of one deployment sharing its AIR MILES token (offer_state.auth over
offer_state.token_store), inside one test process: each an `OfferStateClient` of its own (its
own `TokenProvider`, lease owner, clocks and AWS clients), all against one sandbox (where the
token requests are counted, as AIR MILES would count them) and one token table in moto.

Time is the test's (`World`): every environment's clocks read the world's time, its wall clock
with a skew of its own, and an environment's sleeps move the world on. An environment that runs
in a thread of its own is `detach`ed first: from then on its time is its own, moved by its own
sleeps, and a sleep waits while another environment holds the lease and is still at work
(`Probe.await_holders`), as if fetching a token took less than one poll.

`Probe` sits in every environment's store: it applies one store call at a time, as DynamoDB
applies the writes to one item (moto in-process does not promise that across threads); it
records every call; and it lets a test run code at a given point of one environment's calls, in
the same thread (`before`, `after`), or hold threads at a barrier there (`race`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import boto3
from botocore.config import Config

from offer_state.auth import TokenProvider
from offer_state.client import Collector, OfferStateClient
from offer_state.config import ClientCredentials, ClientSettings
from offer_state.token_store import ITEM_KEY, SharedItem, TokenStore
from offer_state.transport import Deadline
from tests.support.inprocess import Deployed
from tests.support.sandbox_control import SandboxControl

COLLECTOR = "80000000110"
# A token lives 1000 s: with a 30 s margin it is used for 970 s, and its refresh window (its
# last tenth, before the margin) opens 870 s after it was issued.
LIFETIME = 1000
REFRESH_FROM = 870
USABLE_FOR = 970
SETTINGS: dict[str, Any] = {
    "connect_timeout": 0.5,
    "read_timeout": 0.5,
    "total_budget": 2.0,  # a lease lasts 4 s; a waiter keeps 1 s for its own fetch and call
    "backoff_factor": 0.01,
    "backoff_jitter": 0.01,
    "token_margin": 30.0,
    "token_wait": 0.5,
    "token_store_cooldown": 30.0,
    "origin_client": "external:test-partner:web",
}
STORE_CALLS = ("read", "decrypt", "take_lease", "publish", "offer", "release", "invalidate")
HOLDER_TIMEOUT = 10.0  # real seconds: a holder the test expected to finish did not


class World:
    """The test's time: seconds since the test began, on a wall clock starting now."""

    def __init__(self) -> None:
        self.now = 0.0
        self.epoch = time.time()

    def advance(self, seconds: float) -> None:
        self.now += seconds

    def at(self, seconds: float) -> None:
        assert seconds >= self.now, "the world's time only moves on"
        self.now = seconds


@dataclass(frozen=True)
class StoreCall:
    environment: str
    call: str
    result: Any


class Probe:
    """What the environments' stores do, one call at a time (the module docstring)."""

    def __init__(self) -> None:
        self.calls: list[StoreCall] = []
        self._lock = threading.Lock()
        self._changed = threading.Condition()
        self._holders: set[str] = set()  # owners that took the lease and have not written
        self._hooks: dict[tuple[str, str, str], list[Callable[[], None]]] = {}
        self._races: dict[str, tuple[threading.Barrier, list[int]]] = {}

    def before(self, environment: str, call: str, hook: Callable[[], None]) -> None:
        """Run `hook` once, right before `environment`'s next `call` (a STORE_CALLS name)."""
        self._hooks.setdefault((environment, call, "before"), []).append(hook)

    def after(self, environment: str, call: str, hook: Callable[[], None]) -> None:
        """Run `hook` once, right after `environment`'s next `call`."""
        self._hooks.setdefault((environment, call, "after"), []).append(hook)

    def race(self, call: str, parties: int) -> None:
        """The next `parties` calls of `call`, whichever environments make them, wait for each
        other and then go, one at a time."""
        self._races[call] = (threading.Barrier(parties, timeout=HOLDER_TIMEOUT), [parties])

    def forget(self) -> None:
        """Forget the calls made so far (what a test set up)."""
        self.calls.clear()

    def made(self, call: str, environment: str | None = None) -> list[Any]:
        """The results of every `call` made (by `environment`), in order."""
        return [
            c.result for c in self.calls if c.call == call and environment in (None, c.environment)
        ]

    def await_holders(self) -> None:
        """Wait while an environment that took the lease has not written its token yet."""
        with self._changed:
            finished = self._changed.wait_for(lambda: not self._holders, HOLDER_TIMEOUT)
        assert finished, "a lease holder of this test never finished"

    def run(self, environment: str, owner: str, call: str, do: Callable[[], Any]) -> Any:
        for hook in self._hooks.pop((environment, call, "before"), []):
            hook()
        self._join_race(call)
        with self._lock:
            try:
                result = do()
            except Exception as exc:
                self.calls.append(StoreCall(environment, call, exc))
                raise
            self.calls.append(StoreCall(environment, call, result))
            # Under the lock: whoever calls next sees who holds the lease.
            with self._changed:
                if call == "take_lease" and result:
                    self._holders.add(owner)
                elif call in ("publish", "offer", "release"):
                    self._holders.discard(owner)
                self._changed.notify_all()
        for hook in self._hooks.pop((environment, call, "after"), []):
            hook()
        return result

    def _join_race(self, call: str) -> None:
        with self._lock:
            race = self._races.get(call)
            if race is not None:
                race[1][0] -= 1
                if race[1][0] == 0:
                    del self._races[call]  # later calls go straight on
        if race is not None:
            race[0].wait()


class ProbedStore(TokenStore):
    """A `TokenStore` whose every call goes through the `Probe`."""

    def __init__(self, probe: Probe, environment: str, clients: Any, table: str, key: str):
        super().__init__(lambda: clients, table, key)
        self._probe = probe
        self.environment = environment
        self.owner = ""  # the provider's lease owner, once it has one

    def _run(self, call: str, do: Callable[[], Any]) -> Any:
        return self._probe.run(self.environment, self.owner, call, do)

    def read(self) -> SharedItem:
        return self._run("read", super().read)

    def decrypt(self, item: SharedItem) -> str:
        return self._run("decrypt", lambda: super(ProbedStore, self).decrypt(item))

    def take_lease(self, *args: Any, **kwargs: Any) -> bool:
        return self._run("take_lease", lambda: super(ProbedStore, self).take_lease(*args, **kwargs))

    def publish(self, *args: Any, **kwargs: Any) -> bool:
        return self._run("publish", lambda: super(ProbedStore, self).publish(*args, **kwargs))

    def offer(self, *args: Any, **kwargs: Any) -> bool:
        return self._run("offer", lambda: super(ProbedStore, self).offer(*args, **kwargs))

    def release(self, owner: str) -> bool:
        return self._run("release", lambda: super(ProbedStore, self).release(owner))

    def invalidate(self, refused_id: str) -> bool:
        return self._run("invalidate", lambda: super(ProbedStore, self).invalidate(refused_id))


class EnvironmentClock:
    """An environment's monotonic and wall clocks, and its sleep (the module docstring)."""

    def __init__(self, world: World, probe: Probe, skew: float) -> None:
        self._world = world
        self._probe = probe
        self.skew = skew
        self._own: float | None = None

    def detach(self) -> None:
        """From now on a time of its own (for a thread of its own)."""
        if self._own is None:
            self._own = self._world.now

    def advance(self, seconds: float) -> None:
        """Move a detached clock on (the world's time moves the others)."""
        assert self._own is not None
        self._own += seconds

    def monotonic(self) -> float:
        return self._world.now if self._own is None else self._own

    def wall(self) -> float:
        return self._world.epoch + self.monotonic() + self.skew

    def sleep(self, seconds: float) -> None:
        if self._own is None:
            self._world.advance(seconds)
        else:
            self._probe.await_holders()
            self._own += seconds


@dataclass
class Recorder:
    """The provider's `TokenObserver`: what it reported, in order."""

    events: list[tuple[str, ...]] = field(default_factory=list)

    def token_store_failed(self, operation: str, reason: str) -> None:
        self.events.append(("store failed", operation, reason))

    def token_fallback(self) -> None:
        self.events.append(("fallback",))

    def shared_token(self, event: str, token_id: str) -> None:
        self.events.append((event, token_id))

    def store_failures(self) -> list[tuple[str, ...]]:
        return [e for e in self.events if e[0] == "store failed"]


@dataclass
class Environment:
    name: str
    client: OfferStateClient
    clock: EnvironmentClock
    recorder: Recorder
    dynamodb: Any  # its own AWS clients, for faults of its own
    kms: Any

    @property
    def tokens(self) -> TokenProvider:
        assert self.client.tokens is not None
        return self.client.tokens

    def count(self) -> int:
        """One call needing the partner's token (COUNT), with an invocation's whole budget."""
        deadline = Deadline.after(self.client.settings.total_budget, self.clock.monotonic)
        return self.client.count(Collector(COLLECTOR), deadline=deadline)

    def in_thread(self, barrier: threading.Barrier | None = None) -> Callable[[], Any]:
        """Start `count` in a thread of its own (the clock detached first); the returned
        function waits for it and gives its answer (or raises its error)."""
        self.clock.detach()
        outcome: list[Any] = []

        def work() -> None:
            try:
                if barrier is not None:
                    barrier.wait()
                outcome.append(self.count())
            except BaseException as exc:  # noqa: BLE001 - raised again by the join below
                outcome.append(exc)

        thread = threading.Thread(target=work, name=self.name)
        thread.start()

        def join() -> Any:
            thread.join(HOLDER_TIMEOUT * 2)
            assert outcome, f"{self.name} did not finish"
            if isinstance(outcome[0], BaseException):
                raise outcome[0]
            return outcome[0]

        return join


class Deployment:
    """The deployment under test: its sandbox, its token table and key, its environments."""

    def __init__(self, sandbox_control: SandboxControl, deployed: Deployed) -> None:
        self.world = World()
        self.probe = Probe()
        self.sandbox = sandbox_control
        self.table = deployed.refs["TokenTable"]
        self.key = deployed.template.resolve({"Fn::GetAtt": ["TokenKey", "Arn"]})
        self.settings = ClientSettings.for_environment(
            sandbox_control.url, token_url=sandbox_control.url + "/oauth/token", **SETTINGS
        )
        self.credentials = ClientCredentials(**deployed.secret())
        self._dynamodb = boto3.client("dynamodb")  # the test's own: not probed, not faulted
        sandbox_control.config(tokenTtl=LIFETIME)

    def environment(self, name: str, *, skew: float = 0.0) -> Environment:
        """A new execution environment (a cold start), its wall clock `skew` seconds off."""
        clock = EnvironmentClock(self.world, self.probe, skew)
        # One attempt, as the functions' store clients make (offer_state.service).
        once = Config(retries={"mode": "standard", "total_max_attempts": 1})
        dynamodb, kms = boto3.client("dynamodb", config=once), boto3.client("kms", config=once)
        store = ProbedStore(self.probe, name, (dynamodb, kms), self.table, self.key)
        recorder = Recorder()
        client = OfferStateClient(self.settings, self.credentials)
        client.tokens = TokenProvider(
            self.settings,
            client.transport,
            self.credentials,
            clock=clock.monotonic,
            wall_clock=clock.wall,
            sleep=clock.sleep,
            store=store,
            observer=recorder,
        )
        store.owner = client.tokens.owner
        return Environment(name, client, clock, recorder, dynamodb, kms)

    def tokens_issued(self) -> int:
        """Token requests the sandbox answered with a token."""
        return sum(
            1
            for r in self.sandbox.requests()
            if r["endpoint"] == "token" and r.get("status") == 200
        )

    def token_requests(self) -> int:
        return self.sandbox.calls()["token"]

    def item(self) -> dict[str, Any]:
        """The token's item as DynamoDB holds it (attribute values with their types)."""
        return self._dynamodb.get_item(
            TableName=self.table, Key={"pk": {"S": ITEM_KEY}}, ConsistentRead=True
        ).get("Item", {})

    def write_item(self, **attributes: dict[str, Any]) -> None:
        """Replace the token's item with `attributes` (typed values), as a broken writer or a
        holder that crashed left it."""
        self._dynamodb.put_item(TableName=self.table, Item={"pk": {"S": ITEM_KEY}, **attributes})

    def encrypt(self, text: str) -> bytes:
        """`text` encrypted as the store encrypts a token (the key, the context)."""
        return boto3.client("kms").encrypt(
            KeyId=self.key,
            Plaintext=text.encode(),
            EncryptionContext={"tokenTable": self.table, "item": ITEM_KEY},
        )["CiphertextBlob"]
