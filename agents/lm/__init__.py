"""Language-model parts of the LaMo agent: the pre-trained backbone (`agents.lm.backbone`) and the language
corpus for the auxiliary language loss (`agents.lm.corpus`).

Import the submodules directly; this package stays import-light (no torch or transformers on import).
"""
