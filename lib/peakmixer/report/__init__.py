"""Layer 5, report: what a person looks at.

`figures` (every figure and table, each with a JSON sidecar), `explain` (a trained model's predictions and
Grad-CAM figures), `viewer` (the ipywidgets Grad-CAM viewer), `shipped` (the small models in ``models/``
and their cards), `docs` (the generated README sections), `notebooks` (running the notebooks headless).
"""
