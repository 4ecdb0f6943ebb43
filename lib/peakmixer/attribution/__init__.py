"""Layer 2, attribution: Grad-CAM through all or class-specific channels and its scores against the true
bands (`gradcam`)."""

from peakmixer.attribution.gradcam import grad_cam

__all__ = ["grad_cam"]
