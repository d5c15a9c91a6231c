// Starts `archdsl lsp` (over stdio) for .arch files. Everything the editor shows comes from the
// server; this file only launches it (the command is the `archdsl.command` setting).
const vscode = require("vscode");
const { LanguageClient, TransportKind } = require("vscode-languageclient/node");

let client;

function activate(context) {
  const [command, ...args] = vscode.workspace.getConfiguration("archdsl").get("command", ["archdsl", "lsp"]);
  const server = { command, args, transport: TransportKind.stdio };
  client = new LanguageClient("archdsl", "archdsl", { run: server, debug: server }, {
    documentSelector: [{ scheme: "file", language: "arch" }, { scheme: "untitled", language: "arch" }],
  });
  context.subscriptions.push(client);
  return client.start();
}

function deactivate() {
  return client ? client.stop() : undefined;
}

module.exports = { activate, deactivate };
