"""Run the behaviour suite against both drivers.

A test written for the blocking client runs unchanged against the asyncio client:
with the ``driver`` fixture at "async", ``tokenhub.TokenHub``, ``OpenAI`` and
``Anthropic`` build an :class:`AsyncTokenHub` (``AsyncOpenAI``, ``AsyncAnthropic``)
wrapped in a thin blocking facade. The facade runs every coroutine on one event
loop in a background thread and turns async iterators and context managers into
blocking ones; it adds no behaviour of its own, so what the test asserts is what
the async client did.
"""

import asyncio
import threading

import tokenhub


class LoopThread:
    """One event loop, running in a daemon thread, for every async client of a session."""

    def __init__(self):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, awaitable):
        async def wrapped():
            return await awaitable
        return asyncio.run_coroutine_threadsafe(wrapped(), self.loop).result()

    def close(self):
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


def _anext(iterator):
    async def step():
        try:
            return True, await iterator.__anext__()
        except StopAsyncIteration:
            return False, None
    return step()


class Facade:
    """A blocking view of one async tokenhub object (client, resource, stream, runner)."""

    def __init__(self, target, loops):
        object.__setattr__(self, "_target", target)
        object.__setattr__(self, "_loops", loops)

    def __getattr__(self, name):
        return self._wrap(getattr(self._entered(), name))

    def __setattr__(self, name, value):
        setattr(self._target, name, value)

    def __repr__(self):
        return repr(self._target)

    def _wrap(self, value):
        if isinstance(value, (tokenhub.AsyncStream, tokenhub.AsyncToolRunner)) or type(value).__module__ == "tokenhub" \
                and type(value).__name__ in ("_ChatResource", "_Completions", "_Messages", "_Responses", "_Models",
                                             "_AsyncStreamManager", "_RawResource", "_Page") \
                or isinstance(value, tokenhub.AsyncTokenHub):
            return Facade(value, self._loops)
        if hasattr(value, "__anext__"):
            return self._blocking_iterator(value)
        if callable(value) and not isinstance(value, type):
            def call(*args, **kwargs):
                result = value(*args, **kwargs)
                if asyncio.iscoroutine(result):
                    result = self._loops.run(result)
                return self._wrap(result)
            return call
        return value

    def _blocking_iterator(self, iterator):
        while True:
            more, item = self._loops.run(_anext(iterator))
            if not more:
                return
            yield self._wrap(item)

    # iteration
    def __iter__(self):
        target = self._entered()
        if hasattr(target, "__aiter__") and not hasattr(target, "__anext__"):  # a page: async for
            return self._blocking_iterator(target.__aiter__())
        return self

    def __next__(self):
        more, item = self._loops.run(_anext(self._entered()))
        if not more:
            raise StopIteration
        return self._wrap(item)

    # context managers: a client closes, a stream closes, a stream manager enters
    def __enter__(self):
        target = self._target
        if isinstance(target, tokenhub.AsyncTokenHub):
            return self
        return Facade(self._entered(), self._loops)

    def __exit__(self, *exc):
        target = self._target
        if hasattr(target, "__aexit__"):
            self._loops.run(target.__aexit__(*exc))

    def _entered(self):
        """The object behind a stream manager, entered on first use (as ``with`` would)."""
        target = self._target
        if type(target).__name__ == "_AsyncStreamManager":
            if target._stream is None:
                self._loops.run(target.__aenter__())
            return target._stream
        return target


class _Stand_in(type):
    """A class whose instances are the facades over one async class: calling it
    builds the async object behind a facade, and isinstance() sees through facades."""

    def __call__(cls, *args, **kwargs):
        return Facade(cls.target(*args, **kwargs), cls.loops)

    def __instancecheck__(cls, obj):
        return isinstance(obj, Facade) and isinstance(object.__getattribute__(obj, "_target"), cls.target)


def stand_in(loops, target):
    """What ``tokenhub.<name>`` is under the async driver: builds ``target`` behind a facade."""
    return _Stand_in(target.__name__, (), {"target": target, "loops": loops})
