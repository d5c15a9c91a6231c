"""Everything that leaves archdsl or comes into it from elsewhere: checkpoint layouts
(`weights`: official, timm, torchvision, native names).

May import `diff`, `api`, `report`, `lang` and `compiler`; never `roadmap`, `training` or `cli`."""
