"""An agent's session with pty-mcp over Streamable HTTP, through the official MCP Python SDK.

Usage: python_http.py URL TOKEN WAIT_SECONDS
Prints one JSON object: what the agent saw (the tool count, a command's output and status, and,
when WAIT_SECONDS > 0, a wait_for of that long: how it ended and the progress received).
"""

import asyncio
import json
import sys
import time

from mcp import ClientSession
from mcp.client.streamable_http import create_mcp_http_client, streamable_http_client


def structured(result):
    if result.is_error:
        raise SystemExit(f"tool error: {result.content}")
    return result.structured_content


async def main(url: str, token: str, wait: int) -> None:
    seen = {}
    http = create_mcp_http_client(headers={"Authorization": f"Bearer {token}"})
    async with http, streamable_http_client(url, http_client=http) as streams:
        read, write = streams[0], streams[1]
        async with ClientSession(read, write) as session:
            await session.initialize()
            seen["tools"] = len((await session.list_tools()).tools)
            created = structured(
                await session.call_tool(
                    "create_local_session",
                    {"command": "bash", "env": {"PS1": "test$ "}},
                )
            )
            sid = created["session_id"]
            reply = structured(await session.call_tool("send_input", {"session_id": sid, "input": "echo py-$((6*7)); false"}))
            seen["echo"] = {k: reply.get(k) for k in ("output", "exit_code", "completion")}
            if wait > 0:
                progress = []

                async def on_progress(done, total, message):
                    progress.append({"progress": done, "total": total, "message": message})

                started = time.monotonic()
                reply = structured(
                    await session.call_tool(
                        "send_input",
                        {
                            "session_id": sid,
                            "input": f"sleep {wait}; echo done-waiting",
                            "wait_for": "^done-waiting",
                            "wait_for_timeout": wait + 60,
                        },
                        read_timeout_seconds=wait + 120,
                        progress_callback=on_progress,
                    )
                )
                seen["wait"] = {
                    "matched": reply.get("match_line"),
                    "seconds": round(time.monotonic() - started, 1),
                    "progress": len(progress),
                    "last": progress[-1] if progress else None,
                }
            structured(await session.call_tool("close_session", {"session_id": sid}))
    print(json.dumps(seen))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
