"""Tracing, in two parts that never import each other: `traces.recorder` runs inside the deployer's own
processes and records what they do; `traces.runtime` is a separate, slim process (Flask and the standard
library) that takes signed entries, keeps them and shows them. What both need sits here: the signed-ingest
wire (`traces.signing`) and the SQLite file (`traces.store`), which the recorder writes directly when it is
not proxying to a runtime."""
