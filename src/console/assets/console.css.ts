/** The console's one stylesheet (served by assets.ts at /console/assets/console.<hash>.css). */
export const CONSOLE_CSS = `
:root {
  --bg: #f7f7f5; --panel: #ffffff; --text: #1d2125; --muted: #545b64; --line: #d8dbdf;
  --accent: #1f5fbf; --accent-ink: #ffffff; --danger: #a4262c; --ok-bg: #e7f4ea; --ok-ink: #1d5c2e;
  --err-bg: #fbeaea; --err-ink: #8a1c22; --warn-bg: #fff6dd; --warn-ink: #6a4a00; --focus: #ffbf47;
  font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; line-height: 1.5;
}
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--text); }
a { color: var(--accent); }
a:focus-visible, button:focus-visible, input:focus-visible, select:focus-visible, textarea:focus-visible, summary:focus-visible {
  outline: 3px solid var(--focus); outline-offset: 2px;
}
.skip { position: absolute; left: -999px; top: 0; background: var(--panel); padding: .5rem 1rem; }
.skip:focus { left: 1rem; z-index: 10; }
header.top { background: #22303f; color: #fff; padding: .6rem 1.2rem; display: flex; flex-wrap: wrap; gap: .8rem; align-items: center; justify-content: space-between; }
header.top a { color: #fff; }
header.top .brand { font-weight: 700; text-decoration: none; font-size: 1.1rem; }
header.top .who { display: flex; gap: .8rem; align-items: center; flex-wrap: wrap; }
header.top button { background: transparent; color: #fff; border: 1px solid #9fb0c2; }
nav.org { background: var(--panel); border-bottom: 1px solid var(--line); padding: 0 1.2rem; }
nav.org ul { list-style: none; margin: 0; padding: 0; display: flex; flex-wrap: wrap; gap: .2rem 1.2rem; }
nav.org a { display: inline-block; padding: .6rem 0; text-decoration: none; color: var(--muted); border-bottom: 3px solid transparent; }
nav.org a[aria-current="page"] { color: var(--text); border-bottom-color: var(--accent); font-weight: 600; }
nav.org .org-name { font-weight: 700; color: var(--text); padding: .6rem 0; }
main { max-width: 72rem; margin: 0 auto; padding: 1.2rem; }
h1 { font-size: 1.6rem; margin: .4rem 0 1rem; }
h2 { font-size: 1.2rem; margin: 1.6rem 0 .6rem; }
section.panel, form.panel, .panel { background: var(--panel); border: 1px solid var(--line); border-radius: 6px; padding: 1rem 1.2rem; margin: 1rem 0; }
.panel > h2:first-child, .panel > h1:first-child { margin-top: 0; }
caption { text-align: left; padding: .5rem .6rem; }
td form select { width: auto; max-width: 14rem; }
table { width: 100%; border-collapse: collapse; background: var(--panel); }
th, td { text-align: left; padding: .5rem .6rem; border-bottom: 1px solid var(--line); vertical-align: top; }
th { font-weight: 600; color: var(--muted); font-size: .9rem; }
.table-wrap { overflow-x: auto; border: 1px solid var(--line); border-radius: 6px; }
.field { margin: 0 0 .9rem; display: flex; flex-direction: column; gap: .25rem; max-width: 36rem; }
.field label { font-weight: 600; }
.field .hint { color: var(--muted); font-size: .9rem; }
.field .error { color: var(--err-ink); font-weight: 600; }
.field.check { flex-direction: row; align-items: center; gap: .5rem; }
input[type=text], input[type=email], input[type=password], input[type=number], input[type=datetime-local], input[type=search], select, textarea {
  font: inherit; padding: .45rem .55rem; border: 1px solid #8a9199; border-radius: 4px; background: #fff; color: var(--text); width: 100%;
}
textarea { min-height: 8rem; font-family: ui-monospace, monospace; font-size: .9rem; }
[aria-invalid="true"] { border-color: var(--danger); border-width: 2px; }
button, .button { font: inherit; cursor: pointer; padding: .45rem .9rem; border-radius: 4px; border: 1px solid var(--accent); background: var(--accent); color: var(--accent-ink); text-decoration: none; display: inline-block; }
button.secondary, .button.secondary { background: var(--panel); color: var(--accent); }
button.danger { background: var(--danger); border-color: var(--danger); color: #fff; }
form.inline { display: inline; }
.actions { display: flex; flex-wrap: wrap; gap: .5rem; align-items: center; margin: .6rem 0; }
.flash, .alert { padding: .7rem 1rem; border-radius: 6px; margin: 0 0 1rem; border: 1px solid transparent; }
.flash.success { background: var(--ok-bg); color: var(--ok-ink); border-color: #9bcfaa; }
.flash.error, .alert.error { background: var(--err-bg); color: var(--err-ink); border-color: #e3a5a8; }
.alert.warn { background: var(--warn-bg); color: var(--warn-ink); border-color: #e8cf84; }
.secret { display: flex; flex-wrap: wrap; gap: .5rem; align-items: center; }
.secret code { font-size: 1rem; padding: .4rem .6rem; background: #f0f1f3; border: 1px solid var(--line); border-radius: 4px; word-break: break-all; }
code, .mono { font-family: ui-monospace, monospace; font-size: .9rem; }
.muted { color: var(--muted); }
.badge { display: inline-block; padding: 0 .45rem; border-radius: 999px; font-size: .85rem; border: 1px solid var(--line); }
.badge.active { background: var(--ok-bg); color: var(--ok-ink); }
.badge.disabled, .badge.revoked, .badge.expired { background: #eeeff1; color: var(--muted); }
details.confirm { display: inline-block; }
details.confirm > summary { list-style: none; cursor: pointer; display: inline-block; padding: .45rem .9rem; border-radius: 4px; border: 1px solid var(--danger); color: var(--danger); background: var(--panel); }
details.confirm > summary::-webkit-details-marker { display: none; }
details.confirm[open] > .confirm-body { border: 1px solid #e3a5a8; background: var(--err-bg); padding: .8rem 1rem; border-radius: 6px; margin-top: .5rem; max-width: 36rem; }
.filters { display: flex; flex-wrap: wrap; gap: .8rem; align-items: flex-end; }
.filters .field { margin: 0; min-width: 12rem; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: .3rem 1rem; margin: 0; }
dl.facts dt { font-weight: 600; color: var(--muted); }
dl.facts dd { margin: 0; }
.pager { display: flex; gap: 1rem; margin: .8rem 0; }
ul.actions { list-style: none; padding: 0; }
ul.plain { list-style: none; padding: 0; margin: 0; }
.badge { white-space: nowrap; }
fieldset.checks { border: 1px solid var(--line); border-radius: 6px; padding: .6rem 1rem; max-width: 44rem; }
fieldset.checks legend { font-weight: 600; padding: 0 .3rem; }
fieldset.checks .field.check { flex-wrap: wrap; margin: 0 0 .6rem; max-width: none; }
fieldset.checks .field.check .hint { flex-basis: 100%; padding-left: 1.7rem; }
td.mono { overflow-wrap: anywhere; min-width: 12rem; }
@media (max-width: 40rem) {
  main { padding: .8rem; }
  th, td { padding: .4rem; }
  dl.facts { grid-template-columns: 1fr; }
}
`;
