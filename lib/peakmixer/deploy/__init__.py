"""Layer 2, deployment: a trained model outside training: ONNX export (fp32, static int8) with its
metadata (`onnx_export`), one interface to torch and ONNX Runtime (`engines.open_model`), and predictions
for unlabelled spectrum files (`predict.predict_files`). `blocked_conv` rewrites the extractor in the 2-D
form ONNX Runtime runs fastest."""

from peakmixer.deploy.engines import DeployedModel, open_model
from peakmixer.deploy.onnx_export import export_onnx, quantize_int8, read_metadata
from peakmixer.deploy.predict import predict_files

__all__ = ["DeployedModel", "export_onnx", "open_model", "predict_files", "quantize_int8", "read_metadata"]
