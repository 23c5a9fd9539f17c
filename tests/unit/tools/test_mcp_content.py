"""An MCP tool's result as the text the model gets (real SDK result types, no server)."""

from __future__ import annotations

import mcp.types as types

from botical.tools.mcp_content import as_tool_result


def result(*content, **fields):
    return types.CallToolResult(content=list(content), **fields)


def test_text_blocks_are_joined_and_secrets_masked():
    out = as_tool_result(
        result(
            types.TextContent(type="text", text="a key-1"), types.TextContent(type="text", text="b")
        ),
        1024,
        lambda text: text.replace("key-1", "[secret]"),
    )
    assert (out.output, out.is_error, out.metadata) == (
        "a [secret]\nb",
        False,
        {"truncated": False},
    )


def test_other_blocks_are_described_and_errors_kept():
    image = types.ImageContent(type="image", data="aGVsbG8h", mime_type="image/png")
    resource = types.EmbeddedResource(
        type="resource",
        resource=types.TextResourceContents(uri="file:///a.txt", text="inside"),
    )
    out = as_tool_result(result(image, resource, is_error=True), 1024, str)
    assert out.output == "[image image/png, 6 bytes, not shown]\ninside"
    assert out.is_error is True


def test_structured_content_when_there_is_no_text_and_the_cap():
    assert as_tool_result(result(structured_content={"n": 1}), 1024, str).output == '{"n": 1}'
    cut = as_tool_result(result(types.TextContent(type="text", text="é" * 600)), 1024, str)
    assert cut.output == "é" * 512 + "\n[output truncated]"
    assert cut.metadata == {"truncated": True}
