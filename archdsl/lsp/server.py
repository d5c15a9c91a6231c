"""The LSP side: pygls features that call `analysis` and translate its plain data to lsprotocol
types. One analysis per open document, redone on every change (a convnext_t-sized spec takes
a few milliseconds; `archdsl.serverInfo` reports the last one's time)."""
from __future__ import annotations

import logging
import sys

from lsprotocol import types as lsp
from pygls.lsp.server import LanguageServer
from pygls.uris import from_fs_path, to_fs_path

from . import analysis as A

DIFF_PARENT = "archdsl.diffParent"
SERVER_INFO = "archdsl.serverInfo"
_KINDS = {"op": lsp.CompletionItemKind.Function, "argument": lsp.CompletionItemKind.Value,
          "block": lsp.CompletionItemKind.Class, "spec": lsp.CompletionItemKind.File,
          "field": lsp.CompletionItemKind.Field, "keyword": lsp.CompletionItemKind.Keyword,
          "tap": lsp.CompletionItemKind.Reference}


def _range(r: A.Range) -> lsp.Range:
    return lsp.Range(start=lsp.Position(line=r[0][0], character=r[0][1]),
                     end=lsp.Position(line=r[1][0], character=r[1][1]))


def _pos(p: lsp.Position) -> A.Position:
    return p.line, p.character


def make_server() -> LanguageServer:
    from importlib.metadata import PackageNotFoundError, version

    try:
        v = version("archdsl")
    except PackageNotFoundError:
        v = "unknown"
    server = LanguageServer("archdsl", v)
    analyses: dict[str, A.Analysis] = {}

    def path_of(uri: str) -> str:
        return to_fs_path(uri) or uri

    def refresh(uri: str) -> A.Analysis:
        doc = server.workspace.get_text_document(uri)
        a = A.analyze(doc.source, path_of(uri))
        analyses[uri] = a
        server.text_document_publish_diagnostics(lsp.PublishDiagnosticsParams(
            uri=uri, version=doc.version, diagnostics=[
                lsp.Diagnostic(range=_range(d.range), message=d.message, code=d.code, source="archdsl",
                               severity=lsp.DiagnosticSeverity.Error) for d in A.diagnostics(a)]))
        return a

    def current(uri: str) -> A.Analysis:
        return analyses.get(uri) or refresh(uri)

    def at_cursor(params, feature):
        return feature(current(params.text_document.uri), _pos(params.position))

    @server.feature(lsp.TEXT_DOCUMENT_DID_OPEN)
    def did_open(ls, params: lsp.DidOpenTextDocumentParams) -> None:
        refresh(params.text_document.uri)

    @server.feature(lsp.TEXT_DOCUMENT_DID_CHANGE)
    def did_change(ls, params: lsp.DidChangeTextDocumentParams) -> None:
        refresh(params.text_document.uri)

    @server.feature(lsp.TEXT_DOCUMENT_DID_SAVE)
    def did_save(ls, params: lsp.DidSaveTextDocumentParams) -> None:
        refresh(params.text_document.uri)
        for uri in list(analyses):  # the others read this file from disk if they extend it
            if uri != params.text_document.uri:
                refresh(uri)

    @server.feature(lsp.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(ls, params: lsp.DidCloseTextDocumentParams) -> None:
        analyses.pop(params.text_document.uri, None)
        ls.text_document_publish_diagnostics(lsp.PublishDiagnosticsParams(uri=params.text_document.uri,
                                                                          diagnostics=[]))

    @server.feature(lsp.TEXT_DOCUMENT_HOVER)
    def hover(ls, params: lsp.HoverParams) -> lsp.Hover | None:
        found = at_cursor(params, A.hover)  # (markdown, range)
        return None if found is None else lsp.Hover(
            contents=lsp.MarkupContent(kind=lsp.MarkupKind.Markdown, value=found[0]), range=_range(found[1]))

    @server.feature(lsp.TEXT_DOCUMENT_INLAY_HINT)
    def inlay_hints(ls, params: lsp.InlayHintParams) -> list[lsp.InlayHint]:
        first, last = params.range.start.line, params.range.end.line
        return [lsp.InlayHint(position=lsp.Position(line=p[0], character=p[1]), label=label,
                              padding_left=True)
                for p, label in A.inlay_hints(current(params.text_document.uri)) if first <= p[0] <= last]

    @server.feature(lsp.TEXT_DOCUMENT_COMPLETION, lsp.CompletionOptions(trigger_characters=[" "]))
    def completion(ls, params: lsp.CompletionParams) -> lsp.CompletionList:
        uri = params.text_document.uri
        doc = ls.workspace.get_text_document(uri)
        a = current(uri)
        if a.text != doc.source:  # a change not analysed yet
            a = refresh(uri)
        items = [lsp.CompletionItem(label=i.label, kind=_KINDS[i.kind], detail=i.detail or None,
                                    insert_text=i.insert, insert_text_format=lsp.InsertTextFormat.Snippet
                                    if i.insert and "$" in i.insert else None)
                 for i in A.completions(a, _pos(params.position))]
        return lsp.CompletionList(is_incomplete=False, items=items)

    @server.feature(lsp.TEXT_DOCUMENT_DEFINITION)
    def definition(ls, params: lsp.DefinitionParams) -> lsp.Location | None:
        found = at_cursor(params, A.definition)  # (path, range)
        return None if found is None else lsp.Location(uri=from_fs_path(found[0]) or found[0], range=_range(found[1]))

    @server.feature(lsp.TEXT_DOCUMENT_FORMATTING)
    def formatting(ls, params: lsp.DocumentFormattingParams) -> list[lsp.TextEdit] | None:
        a = current(params.text_document.uri)
        text = A.formatted(a)
        if text is None or text == a.text:
            return [] if text is not None else None
        lines = a.text.split("\n")
        end = lsp.Position(line=len(lines), character=0)
        return [lsp.TextEdit(range=lsp.Range(start=lsp.Position(line=0, character=0), end=end), new_text=text)]

    @server.feature(lsp.TEXT_DOCUMENT_CODE_LENS)
    def code_lens(ls, params: lsp.CodeLensParams) -> list[lsp.CodeLens]:
        uri = params.text_document.uri
        found = A.parent_lens(current(uri))
        if found is None:
            return []
        rng, parent = found
        return [lsp.CodeLens(range=_range(rng), command=lsp.Command(title=f"diff against {parent}",
                                                                    command=DIFF_PARENT, arguments=[uri]))]

    def _uri(args) -> str:
        while isinstance(args, (list, tuple)) and args:
            args = args[0]
        return str(args)

    @server.command(DIFF_PARENT)
    def diff_parent(ls, *args) -> str:
        """The diff from the parent to this document, as text; where the editor can show a
        document (window/showDocument), it is written to a temporary file and shown."""
        a = current(_uri(args))
        text = A.diff_against_parent(a)
        caps = ls.client_capabilities.window
        if caps is not None and caps.show_document is not None and caps.show_document.support:
            import tempfile
            from pathlib import Path

            folder = Path(tempfile.gettempdir()) / "archdsl-lsp"
            folder.mkdir(exist_ok=True)
            shown = folder / f"{Path(a.path).stem}.diff.txt"
            shown.write_text(text)
            ls.window_show_document(lsp.ShowDocumentParams(uri=shown.as_uri(), take_focus=True))
        return text

    @server.command(SERVER_INFO)
    def server_info(ls, *args) -> dict:
        """What the server has loaded and how long the last analysis of a document took."""
        uri = _uri(args) if args else None
        a = analyses.get(uri) if uri else None
        return {"torch_imported": "torch" in sys.modules, "version": v,
                "last_analysis_ms": round(a.seconds * 1000, 3) if a else None,
                "documents": len(analyses)}

    return server


MAX_MESSAGE = 64 << 20  # bytes in one message; a spec is a few kB


class _BoundedInput:
    """Standard input for pygls with a cap on one message: a `Content-Length` of terabytes (a
    broken or hostile client) ends the session with one line instead of a MemoryError."""

    def __init__(self, raw) -> None:
        self.raw = raw
        self.refused: int | None = None

    def readline(self, limit: int = 1 << 16) -> bytes:  # a header line; a longer one is read in parts
        return self.raw.readline(limit)

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0 or n > MAX_MESSAGE:
            self.refused = n
            return b""  # pygls ends the session at an empty body
        return self.raw.read(n)

    def __getattr__(self, name: str):
        return getattr(self.raw, name)


class _OneLine(logging.Formatter):
    """pygls logs a message it cannot handle with its traceback: log the error's last line."""

    def formatException(self, exc_info) -> str:  # noqa: N802 (logging's name)
        return f"  ({exc_info[0].__name__}: {str(exc_info[1]).splitlines()[0] if str(exc_info[1]) else ''})"


def main() -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_OneLine("archdsl lsp: %(message)s"))
    log = logging.getLogger("pygls")
    log.addHandler(handler)
    log.setLevel(logging.WARNING)
    log.propagate = False
    stdin = _BoundedInput(sys.stdin.buffer)
    make_server().start_io(stdin)
    if stdin.refused is not None:
        sys.stderr.write(f"error[E010]: archdsl lsp: a message of {stdin.refused} bytes (its Content-Length) is over "
                         f"the {MAX_MESSAGE >> 20} MiB limit; the session is closed\n")
        sys.exit(1)
