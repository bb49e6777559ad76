"""The LipMem app's handlers: plain functions mapping UI inputs to lipmem_core / analysis calls.

`app.py` wires them into Gradio. Handlers may import gradio only for `gr.Error` and
`gr.Progress`; everything else lives in lipmem_core/ and analysis/.
"""
