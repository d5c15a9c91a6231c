"""The language server (`archdsl lsp`): LSP over stdio, on pygls. A thin layer, as ruff's and
rust-analyzer's servers are over their checkers: it owns no language logic.

`analysis` turns a document's text into what an editor shows (diagnostics from the same checker
`archdsl check` runs, hover, inlay hints, completion, definitions, formatting, code lenses),
as plain data with 0-based positions and no pygls; `server` translates that to and from LSP.
Nothing on the path from a keystroke to a diagnostic imports torch.

May import `diff`, `api`, `report`, `lang` (and `compiler` through them) and pygls/lsprotocol;
never `cli`, `training`, `roadmap` or `interop`."""
