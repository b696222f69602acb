"""The run folder, as a protocol: what a training run leaves behind, defined once and read as untrusted input.

    schema.py    the format: file names, field lists, the Status enum, the live-run protocol's time limits
    files.py     safe file access: O_NOFOLLOW opens, atomic replacement, appends; links are refused
    parse.py     each file's checked parser (one-line RunError naming the file)
    liveness.py  who writes a folder: the lock's holder (the kernel's lock table), heartbeats, stop and take-over
    read.py      the one reader (RunRecord, BrokenRun) and RunsFolder, a runs folder followed cheaply
    writer.py    what writers need: new folder names, the writer's lock, summary and metrics table
    convert.py   files back into engine events (rows, live.json, losses.jsonl, config.json's resolved facts)
    tensors.py   model.pt, predictions.pt and checkpoint.pt, loaded with torch.load(weights_only=True)
    export.py    the Runs pane's CSV and JSON export

The events are turned into files by fmtui.recorder; a watched folder is turned back into events by
fmtui.watch. Nothing here imports the text module (fmtui.report), click or textual; only tensors.py imports
torch, inside its functions. Import from the modules themselves: this package's own import stays empty, so
that fmtui.events can take the schema without loading the reader.
"""
