"""The key footer, without Textual's leak (every refresh of the bindings used to keep the old keys forever), and
with grouped letter keys that read as keys: `t/o filter`, not `to filter`.

Textual's Footer rebuilds its keys whenever the bindings may have changed (a focus change, a reactive
declared with bindings=True, any `refresh_bindings()`), and each FooterKey it builds data_binds to the
footer's `compact`. That registers a watcher on the footer, which Textual prunes of removed widgets only
when `compact` changes: never, in fmtui. So each rebuild kept every old key with its styles and render
caches; measured, about 0.2 MB per epoch while the weights view refreshed the bindings once per epoch
(BENCHMARKS.md, "Memory in long runs"). Textual issue 6666.

A group of keys (Binding.Group, compact) shows its keys side by side, then the group's description: `12345
panes` reads well, but letters make words (`to filter`, `toa filter` in the Errors pane). Letters of a group
are joined with `/`.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.widgets import Footer
from textual.widgets._footer import FooterKey, FooterLabel


class KeysFooter(Footer):
    """Footer whose rebuilds release the keys they replace, and whose grouped letters read `t/o`."""

    def compose(self) -> ComposeResult:
        grouped: list[FooterKey] = []
        for widget in super().compose():
            if isinstance(widget, FooterKey) and widget.has_class("-grouped"):
                grouped.append(widget)
            elif isinstance(widget, FooterLabel):  # the group's description follows its keys
                if any(k.key_display.isalpha() for k in grouped):
                    for key in grouped[:-1]:
                        key.key_display += "/"
                grouped = []
            yield widget

    async def recompose(self) -> None:
        await super().recompose()
        self.mutate_reactive(Footer.compact)  # runs the watchers, which drops those of removed keys first
