// render.mjs turns a job summary (GitHub-flavoured Markdown) into an HTML
// page that a headless browser can open from disk: marked renders the
// Markdown, every ```mermaid block becomes <pre class="mermaid">, and an
// inline script draws them with the Mermaid bundle from node_modules and
// marks each block data-rendered="ok" or "error" so a test can read the
// outcome from the dumped DOM.
//
// Usage: node render.mjs summary.md page.html
//
// Mermaid is loaded as a classic script by file:// URL: Chromium refuses
// ES module scripts from file:// pages (their origin is opaque), while a
// classic script loads fine.

import { access, readFile, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { Marked } from 'marked';

const [input, output] = process.argv.slice(2);
if (!input || !output) {
  console.error('usage: node render.mjs summary.md page.html');
  process.exit(2);
}

const escapeHTML = (s) =>
  s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

const marked = new Marked({ gfm: true });
marked.use({
  renderer: {
    code({ text, lang }) {
      if ((lang || '').trim() === 'mermaid') {
        return `<pre class="mermaid">${escapeHTML(text)}</pre>\n`;
      }
      return false;
    },
  },
});

const mermaidURL = new URL('./node_modules/mermaid/dist/mermaid.min.js', import.meta.url);
// Fail here, not in the browser, when the bundle is missing.
await access(fileURLToPath(mermaidURL));

const markdown = await readFile(input, 'utf8');
const body = await marked.parse(markdown);

const page = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>greenlight job summary</title>
<style>
  body { font: 14px/1.5 -apple-system, "Segoe UI", "Noto Sans", Helvetica, Arial, sans-serif; color: #1f2328; max-width: 960px; margin: 16px auto; padding: 0 16px; }
  h2 { border-bottom: 1px solid #d1d9e0; padding-bottom: .3em; }
  table { border-collapse: collapse; margin: 8px 0; display: block; overflow: auto; }
  th, td { border: 1px solid #d1d9e0; padding: 4px 10px; }
  th { background: #f6f8fa; }
  code { background: #eff1f3; border-radius: 4px; padding: .1em .3em; font-size: 85%; }
  pre { background: #f6f8fa; padding: 12px; overflow: auto; border-radius: 6px; }
  pre.mermaid { background: #fff; }
  blockquote { margin: 0; padding: 0 1em; border-left: .25em solid #d1d9e0; color: #59636e; }
</style>
<script src="${mermaidURL.href}"></script>
</head>
<body>
${body}
<script type="module">
  const blocks = [...document.querySelectorAll('pre.mermaid')];
  try {
    mermaid.initialize({ startOnLoad: false, securityLevel: 'strict', theme: 'default' });
  } catch (e) {
    document.body.dataset.mermaidError = String(e && e.message || e);
  }
  for (const [i, el] of blocks.entries()) {
    const source = el.textContent;
    try {
      await mermaid.parse(source);
      const { svg } = await mermaid.render('greenlight-chart-' + i, source);
      el.innerHTML = svg;
      el.dataset.rendered = 'ok';
    } catch (e) {
      el.dataset.rendered = 'error';
      el.dataset.error = String(e && e.message || e).slice(0, 500);
    }
  }
  document.body.dataset.mermaid = 'done';
</script>
</body>
</html>
`;

await writeFile(output, page);
