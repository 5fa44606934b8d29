/*
 * The console's page frame and HTML helpers: complete HTML5 documents
 * with inline CSS only, no script and no external asset, headings and
 * landmarks for screen readers, a skip link, visible focus, and the
 * language switch.  Every dynamic value and every translated string goes
 * through portal_html_escape().  No I/O.  See console.h.
 */

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "console.h"


static void console_html_switch(portal_buf_t *b, const console_page_t *pg,
    portal_lang_t to, const char *label);


static const char  console_css[] =
    "body{font-family:system-ui,sans-serif;margin:0;background:#f4f5f7;"
    "color:#1b1f24;line-height:1.5}"
    "header{background:#1b1f24;color:#fff;padding:.5rem 1.5rem;"
    "display:flex;flex-wrap:wrap;gap:.5rem 2rem;align-items:center}"
    "header a{color:#fff}"
    "header ul{list-style:none;margin:0;padding:0;display:flex;gap:1rem}"
    ".brand{font-weight:700;margin:0}"
    ".who{margin:0 0 0 auto}"
    "main{max-width:64rem;margin:1.5rem auto;background:#fff;"
    "padding:1.5rem 2rem;border:1px solid #c9ced6;border-radius:6px}"
    "h1{font-size:1.5rem;margin:0 0 1rem}"
    "h2{font-size:1.2rem;margin:2rem 0 .5rem;border-top:1px solid #c9ced6;"
    "padding-top:1rem}"
    "label{display:block;font-weight:600;margin-top:1rem}"
    "fieldset{margin-top:1rem;border:1px solid #c9ced6;border-radius:4px}"
    "legend{font-weight:600}"
    "fieldset label{font-weight:400;margin-top:.25rem}"
    "input[type=text],input[type=password],input[type=search],"
    "input[type=file],select{display:block;width:100%;max-width:32rem;"
    "box-sizing:border-box;font-size:1rem;padding:.45rem;"
    "margin-top:.25rem;border:1px solid #6b7280;border-radius:4px}"
    "input:focus,button:focus,a:focus,select:focus,main:focus{"
    "outline:3px solid #1d4ed8;outline-offset:2px}"
    ".hint{font-size:.875rem;color:#4b5563;margin:.25rem 0 0}"
    "button{margin-top:1rem;font-size:1rem;padding:.5rem 1rem;"
    "background:#1d4ed8;color:#fff;border:0;border-radius:4px;"
    "cursor:pointer}"
    "button.danger{background:#b91c1c}"
    "td button{margin:0;padding:.2rem .6rem;font-size:.875rem}"
    "table{border-collapse:collapse;width:100%;margin-top:.5rem}"
    "caption{text-align:left;font-weight:600}"
    "th,td{text-align:left;padding:.35rem .5rem;border-bottom:1px solid "
    "#e5e7eb;vertical-align:top}"
    "dl{display:grid;grid-template-columns:max-content auto;gap:.25rem 1rem}"
    "dt{font-weight:600}dd{margin:0}"
    "code,.secret{font-family:ui-monospace,monospace}"
    ".secret{font-size:1.4rem;letter-spacing:.05em;background:#f4f5f7;"
    "padding:.5rem .75rem;border:1px dashed #6b7280;display:inline-block}"
    ".qr{background:#fff;padding:.5rem;display:inline-block}"
    ".status{background:#ecfdf3;border:1px solid #15803d;color:#14532d;"
    "padding:.75rem;border-radius:4px}"
    ".error{background:#fdecec;border:1px solid #b91c1c;color:#7f1d1d;"
    "padding:.75rem;border-radius:4px}"
    ".skip{position:absolute;left:-999px}"
    ".skip:focus{left:1rem;top:1rem;background:#fff;color:#1d4ed8;"
    "padding:.5rem;z-index:1}"
    "a{color:#1d4ed8}";


void
console_html_str(portal_buf_t *b, const console_page_t *pg,
    console_str_t id)
{
    portal_html_escape(b, console_str(pg->lang, id));
}


void
console_html_fmt(portal_buf_t *b, const char *fmt, ...)
{
    va_list  ap;
    char     buf[1024];

    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);

    portal_html_escape(b, buf);
}


void
console_html_query_value(portal_buf_t *b, const char *s)
{
    char  enc[3 * 256 + 1];

    if (portal_url_encode(s, enc, sizeof(enc)) != 0) {
        b->overflow = 1;
        return;
    }

    portal_html_escape(b, enc);
}


void
console_html_message(portal_buf_t *b, const char *text, int error)
{
    if (text == NULL || text[0] == '\0') {
        return;
    }

    portal_buf_add(b, error ? "<p class=\"error\" role=\"alert\">"
                            : "<p class=\"status\" role=\"status\">");
    portal_html_escape(b, text);
    portal_buf_add(b, "</p>\n");
}


void
console_html_csrf(portal_buf_t *b, const console_page_t *pg)
{
    portal_buf_add(b, "<input type=\"hidden\" name=\"csrf\" value=\"");
    portal_html_escape(b, pg->csrf);
    portal_buf_add(b, "\">\n");
}


void
console_html_form(portal_buf_t *b, const console_page_t *pg,
    const char *action, int multipart)
{
    portal_buf_add(b, "<form method=\"post\" action=\"");
    portal_html_escape(b, pg->base);
    portal_buf_add(b, "/");
    portal_html_escape(b, action);
    portal_buf_add(b, multipart ? "\" enctype=\"multipart/form-data\">\n"
                                : "\">\n");
    console_html_csrf(b, pg);
}


void
console_html_time(portal_buf_t *b, const console_page_t *pg, int64_t t)
{
    struct tm  tm;
    time_t     tt;
    char       buf[40];

    if (t == 0) {
        console_html_str(b, pg, CONSOLE_S_NEVER);
        return;
    }

    tt = (time_t) t;
    if (gmtime_r(&tt, &tm) == NULL
        || strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M UTC", &tm) == 0)
    {
        snprintf(buf, sizeof(buf), "%lld", (long long) t);
    }

    portal_buf_add(b, "<time datetime=\"");
    console_html_fmt(b, "%lld", (long long) t);
    portal_buf_add(b, "\">");
    portal_html_escape(b, buf);
    portal_buf_add(b, "</time>");
}


/* One link of the language switch, back to this page. */
static void
console_html_switch(portal_buf_t *b, const console_page_t *pg,
    portal_lang_t to, const char *label)
{
    portal_buf_add(b, "<li><a href=\"");
    portal_html_escape(b, pg->base);
    portal_buf_add(b, "/lang?to=");
    portal_buf_add(b, portal_lang_tag(to));
    if (pg->self != NULL && pg->self[0] != '\0') {
        portal_buf_add(b, "&amp;back=");
        console_html_query_value(b, pg->self);
    }
    portal_buf_add(b, "\" lang=\"");
    portal_buf_add(b, portal_lang_tag(to));
    portal_buf_add(b, "\" hreflang=\"");
    portal_buf_add(b, portal_lang_tag(to));
    portal_buf_add(b, "\"");
    if (pg->lang == to) {
        portal_buf_add(b, " aria-current=\"true\"");
    }
    portal_buf_add(b, ">");
    portal_html_escape(b, label);
    portal_buf_add(b, "</a></li>");
}


void
console_html_begin(portal_buf_t *b, const console_page_t *pg,
    const char *heading)
{
    b->len = 0;
    b->overflow = 0;
    if (b->cap > 0) {
        b->p[0] = '\0';
    }

    portal_buf_add(b, "<!DOCTYPE html>\n<html lang=\"");
    portal_buf_add(b, portal_lang_tag(pg->lang));
    portal_buf_add(b, "\">\n<head>\n<meta charset=\"utf-8\">\n"
                   "<meta name=\"viewport\" "
                   "content=\"width=device-width, initial-scale=1\">\n"
                   "<title>");
    portal_html_escape(b, heading);
    portal_buf_add(b, " - ");
    console_html_str(b, pg, CONSOLE_S_APP);
    portal_buf_add(b, "</title>\n<style>");
    portal_buf_add(b, console_css);
    portal_buf_add(b, "</style>\n</head>\n<body>\n<a class=\"skip\" "
                   "href=\"#main\">");
    console_html_str(b, pg, CONSOLE_S_SKIP);
    portal_buf_add(b, "</a>\n<header>\n<p class=\"brand\"><a href=\"");
    portal_html_escape(b, pg->base);
    portal_buf_add(b, "/\">");
    console_html_str(b, pg, CONSOLE_S_APP);
    portal_buf_add(b, "</a></p>\n");

    if (pg->staff != NULL) {
        portal_buf_add(b, "<nav aria-label=\"");
        console_html_str(b, pg, CONSOLE_S_NAV_MAIN);
        portal_buf_add(b, "\"><ul><li><a href=\"");
        portal_html_escape(b, pg->base);
        portal_buf_add(b, "/\">");
        console_html_str(b, pg, CONSOLE_S_NAV_SEARCH);
        portal_buf_add(b, "</a></li><li><a href=\"");
        portal_html_escape(b, pg->base);
        portal_buf_add(b, "/users/new\">");
        console_html_str(b, pg, CONSOLE_S_NAV_NEW_USER);
        portal_buf_add(b, "</a></li></ul></nav>\n<p class=\"who\">");
        console_html_str(b, pg, CONSOLE_S_SIGNED_IN_AS);
        portal_buf_add(b, " <strong id=\"staff\">");
        portal_html_escape(b, pg->staff);
        portal_buf_add(b, "</strong></p>\n");
    }

    portal_buf_add(b, "<nav aria-label=\"");
    console_html_str(b, pg, CONSOLE_S_NAV_LANG);
    portal_buf_add(b, "\"><ul>");
    console_html_switch(b, pg, PORTAL_LANG_EN, "English");
    console_html_switch(b, pg, PORTAL_LANG_ZH_TW, "中文（台灣）");
    portal_buf_add(b, "</ul></nav>\n</header>\n<main id=\"main\" "
                   "tabindex=\"-1\">\n<h1>");
    portal_html_escape(b, heading);
    portal_buf_add(b, "</h1>\n");
}


void
console_html_end(portal_buf_t *b)
{
    portal_buf_add(b, "</main>\n</body>\n</html>\n");
}
