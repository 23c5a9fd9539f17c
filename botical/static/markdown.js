// Answers as markdown: markdown-it parses (raw HTML off), DOMPurify sanitizes what it made,
// highlight.js colours fenced code, and every code block gets a copy button. Nothing from the
// server reaches the page except through DOMPurify.

import markdownit from "./vendor/markdown-it.min.js";
import DOMPurify from "./vendor/purify.js";
import hljs from "./vendor/highlight.min.js";

function highlight(code, language) {
  if (!language || !hljs.getLanguage(language)) return ""; // markdown-it escapes it
  try {
    return hljs.highlight(code, { language, ignoreIllegals: true }).value;
  } catch {
    return "";
  }
}

const md = markdownit({
  html: false,
  linkify: true,
  breaks: true,
  langPrefix: "hljs language-",
  highlight,
});

// Links open elsewhere, and tell nothing about the console to where they lead.
DOMPurify.addHook("afterSanitizeAttributes", (node) => {
  if (node.tagName === "A") {
    node.setAttribute("target", "_blank");
    node.setAttribute("rel", "noopener noreferrer nofollow");
  }
});

const PURIFY = { RETURN_DOM_FRAGMENT: true, FORBID_TAGS: ["style", "form", "input", "button"] };

async function copy(text) {
  if (navigator.clipboard?.writeText) return navigator.clipboard.writeText(text);
  const area = Object.assign(document.createElement("textarea"), { value: text });
  document.body.append(area);
  area.select();
  const copied = document.execCommand("copy");
  area.remove();
  if (!copied) throw new Error("copy refused");
}

function copyButton(code) {
  const button = Object.assign(document.createElement("button"), {
    type: "button",
    className: "copy",
    textContent: "Copy",
  });
  button.addEventListener("click", async () => {
    try {
      await copy(code.textContent.replace(/\n$/, ""));
      button.textContent = "Copied";
    } catch {
      button.textContent = "Copy failed";
    }
    setTimeout(() => (button.textContent = "Copy"), 2000);
  });
  return button;
}

// A sanitized fragment for `text`.
export function renderMarkdown(text) {
  const fragment = DOMPurify.sanitize(md.render(text).trim(), PURIFY);
  for (const pre of fragment.querySelectorAll("pre")) {
    const box = document.createElement("div");
    box.className = "code-block";
    pre.replaceWith(box);
    box.append(copyButton(pre), pre);
  }
  return fragment;
}
