"""Run localstripe (the fake Stripe server) on loopback, with a store of this run's own.

localstripe pickles its whole store to the fixed path /tmp/localstripe.pickle on every write:
every instance on the machine would share that file, and each write gets slower as data grows.
Here the store lives in this process only, so each run (and each test session) has its own;
with `--store PATH` it is loaded from PATH at start (if the file exists) and saved there once
after every write request, so `make run` keeps its fake customers across restarts.
It also accepts `off_session` when confirming a PaymentIntent, as real Stripe does, so the
gateway can send Stripe's own parameters instead of special-casing the fake.
"""

import argparse
import logging
import os
import pickle
from pathlib import Path

from aiohttp import web
from localstripe import resources


def _keep_store_in_memory() -> None:
    resources.Store.dump_to_disk = lambda self: None
    resources.Store.try_load_from_disk = lambda self: None


def _keep_store_in_file(path: Path) -> None:
    """Load the store from `path` now and save it there after each write request."""

    def dump_to_disk(self) -> None:
        # Write a sibling file and rename it, so a crash mid-write never leaves half a pickle.
        tmp = path.with_name(f"{path.name}.tmp")
        with tmp.open("wb") as f:
            pickle.dump(dict(self), f, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, path)

    def try_load_from_disk(self) -> None:
        try:
            with path.open("rb") as f:
                saved = pickle.load(f)
        except FileNotFoundError:
            return
        self.clear()
        self.update(saved)

    path.parent.mkdir(parents=True, exist_ok=True)
    resources.Store.dump_to_disk = dump_to_disk
    resources.Store.try_load_from_disk = try_load_from_disk
    # localstripe saves on every item set or deleted, and its server middleware saves again after
    # each PUT, POST and DELETE; saving only in the middleware writes the file once per request.
    resources.Store.__setitem__ = dict.__setitem__
    resources.Store.__delitem__ = dict.__delitem__
    resources.store.try_load_from_disk()


def _accept_off_session_on_confirm() -> None:
    confirm = resources.PaymentIntent._api_confirm

    def confirm_like_stripe(id, payment_method=None, off_session=None, **kwargs):
        return confirm(id, payment_method=payment_method, **kwargs)

    # localstripe.server builds its routes from this table when it is imported.
    for index, (method, url, func) in enumerate(resources.extra_apis):
        if func == confirm:
            resources.extra_apis[index] = (method, url, confirm_like_stripe)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8420)
    parser.add_argument("--store", type=Path, metavar="PATH", help="pickle file to load the store from and save it to")
    args = parser.parse_args()
    if args.store:
        _keep_store_in_file(args.store.resolve())
    else:
        _keep_store_in_memory()
    _accept_off_session_on_confirm()
    from localstripe import server  # after the patches: it reads them at import time
    from localstripe.webhooks import _webhooks

    async def forget_webhooks(request):
        """DELETE /_config/webhooks: stop sending events (tests register a fresh endpoint each time)."""
        _webhooks.clear()
        return web.Response()

    server.app.router.add_delete("/_config/webhooks", forget_webhooks)
    logging.basicConfig(level=logging.WARNING)
    web.run_app(server.app, host=args.host, port=args.port, access_log=None, print=None)


if __name__ == "__main__":
    main()
