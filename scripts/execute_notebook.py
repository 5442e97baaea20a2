#!/usr/bin/env python3
"""Execute a notebook on a Jupyter kernel and keep every output it sends.

Why not `jupyter nbconvert --execute`: evcxr reports a top-level `?` on an Err
only by printing the error to stderr, and it forwards the kernel child's stderr
from another thread. That line can reach the client after the cell was reported
done, tagged with the finished cell's request. nbclient listens only for the
current cell's messages and silently drops it, so the failure went unseen now
and then (on a loaded machine). Sleeping in a last cell narrowed that window
but could not close it.

This runner is nbclient (the engine nbconvert uses) with one change: a stream
or error message that belongs to a cell already finished is appended to that
cell instead of being dropped. A last cell (added here, tagged so the caller
can remove it after the check) keeps the client listening while late output
arrives, and the runner waits for the kernel to be quiet before it stops.

Usage: execute_notebook.py SRC.ipynb DST.ipynb [--kernel rust]
       [--timeout 1800] [--startup-timeout 600]
The kernel runs in SRC's folder (notebooks use `:dep ... path = "../..."`).
"""
import argparse
import asyncio
import os
import sys
from queue import Empty

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionComplete, CellExecutionError
from nbclient.util import ensure_async

from check_notebook import SENTINEL_TAG  # the tag the check and the export look for
# The last cell waits a little so that output the kernel forwards late (after
# the cell before was reported done) arrives while the client still listens.
SENTINEL_SOURCE = "std::thread::sleep(std::time::Duration::from_millis(2000));"
# After the last cell: how long iopub must stay silent before the run ends.
QUIET_SECONDS = 2.0


class KeepLateOutput(NotebookClient):
    """nbclient that files late stream/error messages under the cell they belong to."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._cells_by_msg = {}
        self.late_outputs = 0

    def _file_late(self, msg):
        parent = msg.get("parent_header", {}).get("msg_id")
        owner = self._cells_by_msg.get(parent)
        if owner is None or msg["msg_type"] not in ("stream", "error"):
            return
        owner.setdefault("outputs", []).append(nbformat.v4.output_from_msg(msg))
        self.late_outputs += 1

    async def _async_poll_output_msg(self, parent_msg_id, cell, cell_index):
        # The same loop as nbclient 0.11's, with `_file_late` where it dropped.
        assert self.kc is not None
        self._cells_by_msg[parent_msg_id] = cell
        while True:
            msg = await ensure_async(self.kc.iopub_channel.get_msg(timeout=None))
            if msg["parent_header"].get("msg_id") == parent_msg_id:
                try:
                    self.process_message(msg, cell, cell_index)
                except CellExecutionComplete:
                    return
            else:
                self._file_late(msg)

    async def drain(self, quiet):
        """Collect whatever still arrives until iopub has been silent `quiet` seconds."""
        assert self.kc is not None
        while True:
            try:
                msg = await ensure_async(self.kc.iopub_channel.get_msg(timeout=quiet))
            except Empty:
                return
            self._file_late(msg)


def sentinel():
    cell = nbformat.v4.new_code_cell(SENTINEL_SOURCE)
    cell.id = SENTINEL_TAG
    cell.metadata["tags"] = [SENTINEL_TAG]
    return cell


async def run(args):
    nb = nbformat.read(args.src, as_version=4)
    nb.cells.append(sentinel())
    folder = os.path.dirname(os.path.abspath(args.src))
    client = KeepLateOutput(
        nb,
        timeout=args.timeout,
        startup_timeout=args.startup_timeout,
        kernel_name=args.kernel,
        resources={"metadata": {"path": folder}},
    )
    failure = None
    client.reset_execution_trackers()
    async with client.async_setup_kernel():
        # As nbclient's async_execute: the kernel's language_info goes into the
        # notebook (the HTML export highlights code with it).
        info = await client.async_wait_for_reply(await ensure_async(client.kc.kernel_info()))
        if info is not None and "language_info" in info["content"]:
            nb.metadata["language_info"] = info["content"]["language_info"]
        try:
            # Cells run in order; the first failing one stops the run, as nbconvert does.
            for index, cell in enumerate(nb.cells):
                await client.async_execute_cell(
                    cell, index, execution_count=client.code_cells_executed + 1)
        except CellExecutionError as error:
            failure = error
        await client.drain(QUIET_SECONDS)
        client.set_widgets_metadata()
    nbformat.write(nb, args.dst)
    if client.late_outputs:
        print(f"{args.src}: {client.late_outputs} output(s) arrived after their cell "
              "was reported done; kept in that cell", file=sys.stderr)
    if failure is not None:
        print(str(failure), file=sys.stderr)
        return 1
    return 0


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("src")
    p.add_argument("dst")
    p.add_argument("--kernel", default="rust")
    p.add_argument("--timeout", type=int, default=1800)
    p.add_argument("--startup-timeout", type=int, default=600)
    return asyncio.run(run(p.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
