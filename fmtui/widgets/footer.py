"""The key footer, without Textual's leak: every refresh of the bindings used to keep the old keys forever.

Textual's Footer rebuilds its keys whenever the bindings may have changed (a focus change, a reactive
declared with bindings=True, any `refresh_bindings()`), and each FooterKey it builds data_binds to the
footer's `compact`. That registers a watcher on the footer, which Textual prunes of removed widgets only
when `compact` changes: never, in fmtui. So each rebuild kept every old key with its styles and render
caches; measured, about 0.2 MB per epoch while the weights view refreshed the bindings once per epoch
(BENCHMARKS.md, "Memory in long runs"). Textual issue 6666.
"""

from __future__ import annotations

from textual.widgets import Footer


class KeysFooter(Footer):
    """Footer whose rebuilds release the keys they replace."""

    async def recompose(self) -> None:
        await super().recompose()
        self.mutate_reactive(Footer.compact)  # runs the watchers, which drops those of removed keys first
