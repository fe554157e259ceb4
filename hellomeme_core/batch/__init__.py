"""Batch meme videos through a ComfyUI server's HTTP API (``python -m hellomeme_core batch``).

One module per job: ``jobs`` (the jobs file or folders), ``workflow`` (finding a workflow's job inputs and
making each job's prompt), ``identity`` (content hashes, prompt ids, upload names), ``client`` (HTTP and
websocket, aiohttp), ``state`` (``batch_state.json``), ``runner`` (the loop), ``local_server`` (a ComfyUI
started for the batch), ``outputs`` (a job's saved files), ``progress`` (terminal bar or JSON events),
``report`` (``report.json`` and the summary table). Nothing here imports ComfyUI.
"""
