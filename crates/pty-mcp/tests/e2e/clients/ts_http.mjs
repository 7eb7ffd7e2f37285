// An agent's session with pty-mcp over Streamable HTTP, through the official MCP TypeScript SDK.
// Usage: node ts_http.mjs URL TOKEN   (NODE_PATH: where @modelcontextprotocol/sdk is installed)
// Prints one JSON object: the tool count, and a command's output and status.
import { createRequire } from "node:module";
import path from "node:path";

const require = createRequire(path.join(process.env.SDK_PREFIX, "package.json"));
const { Client } = require("@modelcontextprotocol/sdk/client/index.js");
const { StreamableHTTPClientTransport } = require("@modelcontextprotocol/sdk/client/streamableHttp.js");

const [url, token] = process.argv.slice(2);
const transport = new StreamableHTTPClientTransport(new URL(url), {
  requestInit: { headers: { Authorization: `Bearer ${token}` } },
});
const client = new Client({ name: "ts-http-test", version: "1.0.0" });
await client.connect(transport);
const seen = { tools: (await client.listTools()).tools.length };
const created = await client.callTool({
  name: "create_local_session",
  arguments: { command: "bash", env: { PS1: "test$ " } },
});
const sid = created.structuredContent.session_id;
const reply = await client.callTool({ name: "send_input", arguments: { session_id: sid, input: "echo ts-$((6*7)); false" } });
const r = reply.structuredContent;
seen.echo = { output: r.output, exit_code: r.exit_code, completion: r.completion };
await client.callTool({ name: "close_session", arguments: { session_id: sid } });
await transport.terminateSession();
await client.close();
console.log(JSON.stringify(seen));
