"""The language server as an editor meets it: pytest-lsp starts `python -m archdsl lsp` and talks
LSP to it over stdio. Expected shapes and costs come from the published ConvNeXt-T and from
`archdsl check`'s own diagnostics, not from the server."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import pytest_lsp
from lsprotocol import types as lsp
from pytest_lsp import ClientServerConfig, LanguageClient

REPO = Path(__file__).resolve().parents[2]
CONVNEXT_T = REPO / "specs" / "convnext_t.arch"
CONVNEXT_S = REPO / "specs" / "convnext_s.arch"
ENV = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}


@pytest_lsp.fixture(config=ClientServerConfig(server_command=[sys.executable, "-m", "archdsl", "lsp"],
                                              server_env=ENV))
async def client(lsp_client: LanguageClient):
    await lsp_client.initialize_session(lsp.InitializeParams(capabilities=lsp.ClientCapabilities(),
                                                             root_uri=REPO.as_uri()))
    yield
    await lsp_client.shutdown_session()


def line_of(text: str, needle: str) -> tuple[int, int]:
    for i, line in enumerate(text.split("\n")):
        if needle in line:
            return i, line.index(needle)
    raise AssertionError(needle)


async def open_doc(client: LanguageClient, path: Path, text: str | None = None) -> tuple[str, str]:
    uri, text = path.as_uri(), text if text is not None else path.read_text()
    client.text_document_did_open(lsp.DidOpenTextDocumentParams(
        text_document=lsp.TextDocumentItem(uri=uri, language_id="arch", version=1, text=text)))
    await client.wait_for_notification(lsp.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
    return uri, text


@pytest.mark.asyncio
async def test_diagnostics_hover_and_completion_on_convnext_t(client: LanguageClient):
    uri, text = await open_doc(client, CONVNEXT_T)
    assert list(client.diagnostics[uri]) == []

    # an edit that breaks it: the diagnostic `archdsl check` gives, at the word
    broken = text.replace("        dwconv7\n", "        dwconv8\n")
    client.text_document_did_change(lsp.DidChangeTextDocumentParams(
        text_document=lsp.VersionedTextDocumentIdentifier(uri=uri, version=2),
        content_changes=[lsp.TextDocumentContentChangeWholeDocument(text=broken)]))
    await client.wait_for_notification(lsp.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
    (diag,) = client.diagnostics[uri]
    line, col = line_of(broken, "dwconv8")
    assert diag.code == "E302" and diag.source == "archdsl"
    assert (diag.range.start.line, diag.range.start.character) == (line, col)
    assert (diag.range.end.line, diag.range.end.character) == (line, col + len("dwconv8"))
    assert diag.message.startswith("`dwconv8` has an even kernel") and "did you mean `dwconv7`" in diag.message
    info = await client.workspace_execute_command_async(lsp.ExecuteCommandParams(
        command="archdsl.serverInfo", arguments=[uri]))
    assert info["torch_imported"] is False and info["last_analysis_ms"] > 0

    # fixed again; hover dwconv7: ConvNeXt-T's 7x7 depthwise conv, 96x56x56 in stage 1, 49*96+96 params
    client.text_document_did_change(lsp.DidChangeTextDocumentParams(
        text_document=lsp.VersionedTextDocumentIdentifier(uri=uri, version=3),
        content_changes=[lsp.TextDocumentContentChangeWholeDocument(text=text)]))
    await client.wait_for_notification(lsp.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
    assert list(client.diagnostics[uri]) == []
    line, col = line_of(text, "dwconv7")
    hover = await client.text_document_hover_async(lsp.HoverParams(
        text_document=lsp.TextDocumentIdentifier(uri=uri), position=lsp.Position(line=line, character=col + 2)))
    value = hover.contents.value
    assert "depthwise" in value
    assert "| stage 1 | 3 | 96x56x56 | 96x56x56 | 14,400 |" in value      # 3 blocks x (49*96 + 96)
    assert "| stage 3 | 9 | 384x14x14 | 384x14x14 | 172,800 |" in value   # 9 blocks x (49*384 + 384)
    assert "| stage 1 | 3 | 96x56x56 | 96x56x56 | 14,400 | 44.26 M |" in value  # 3 x 56*56*96*49 MACs

    # inlay hints at the end of the stage lines
    hints = await client.text_document_inlay_hint_async(lsp.InlayHintParams(
        text_document=lsp.TextDocumentIdentifier(uri=uri),
        range=lsp.Range(start=lsp.Position(line=0, character=0), end=lsp.Position(line=60, character=0))))
    by_line = {h.position.line: h.label for h in hints}
    assert "768x7x7" in by_line[line_of(text, "768 convnext x3")[0]]


@pytest.mark.asyncio
async def test_completion_definition_formatting_and_lens(client: LanguageClient):
    text = "network mine extends \ninput 3x64x64\n"
    path = REPO / "specs" / "mine_not_on_disk.arch"
    uri, _ = await open_doc(client, path, text)
    result = await client.text_document_completion_async(lsp.CompletionParams(
        text_document=lsp.TextDocumentIdentifier(uri=uri), position=lsp.Position(line=0, character=21)))
    labels = {i.label for i in result.items}
    assert {"convnext_t", "resnet50", "swin_t", "step05_widen"} <= labels

    uri, text = await open_doc(client, CONVNEXT_S)
    line, col = line_of(text, "extends convnext_t")
    target = await client.text_document_definition_async(lsp.DefinitionParams(
        text_document=lsp.TextDocumentIdentifier(uri=uri), position=lsp.Position(line=line, character=col + 10)))
    assert target.uri == CONVNEXT_T.as_uri()
    line, col = line_of(text, "convnext x27")
    target = await client.text_document_definition_async(lsp.DefinitionParams(
        text_document=lsp.TextDocumentIdentifier(uri=uri), position=lsp.Position(line=line, character=col + 3)))
    block_line, _ = line_of(CONVNEXT_T.read_text(), "block convnext {")
    assert target.uri == CONVNEXT_T.as_uri() and target.range.start.line == block_line

    lenses = await client.text_document_code_lens_async(lsp.CodeLensParams(
        text_document=lsp.TextDocumentIdentifier(uri=uri)))
    assert [lens.command.title for lens in lenses] == ["diff against convnext_t"]
    shown = await client.workspace_execute_command_async(lsp.ExecuteCommandParams(
        command=lenses[0].command.command, arguments=lenses[0].command.arguments))
    assert "depths 3,3,9,3 -> 3,3,27,3" in shown and "+21,634,560" in shown  # ConvNeXt-S: 50.2M vs 28.6M

    messy = text.replace("stages {", "stages    {").replace("    96  convnext x3", "  96 convnext    x3")
    uri2, _ = await open_doc(client, REPO / "specs" / "convnext_s_messy.arch", messy)
    edits = await client.text_document_formatting_async(lsp.DocumentFormattingParams(
        text_document=lsp.TextDocumentIdentifier(uri=uri2), options=lsp.FormattingOptions(tab_size=4,
                                                                                          insert_spaces=True)))
    assert len(edits) == 1 and edits[0].new_text == text  # the shipped file is in canonical form
