"""The language: grammar, parser, AST, resolution of `extends` and overrides, the training
recipe, the resolved `Network`, and its translation into compiler IR (`to_ir`).

May import `compiler` and nothing else of archdsl: the rooms above it (`api`, `diff`,
`roadmap`, `interop`, `training`, `cli`) import it, never the other way round."""
