"""Everything that leaves archdsl or comes into it from elsewhere: checkpoint layouts
(`weights`: official, timm, torchvision, native names), a standalone PyTorch file
(`export_code`), ONNX (`export_onnx`), diagrams (`draw`) and weights carried across an edit
(`transfer`).

May import `diff`, `api`, `report`, `lang` and `compiler`; never `roadmap`, `training` or `cli`."""
