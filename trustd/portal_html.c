/*
 * Portal pages: small, complete HTML5 documents with inline CSS only, no
 * script and no external asset.  Every dynamic value goes through
 * portal_html_escape(); the fixed strings come from portal_i18n.c and are
 * escaped too, so a translation can never inject markup.  See portal.h.
 */

#include <stddef.h>
#include <string.h>

#include "portal.h"


static void portal_html_head(portal_buf_t *b, const portal_page_t *pg,
    portal_str_t title);
static void portal_html_error(portal_buf_t *b, const portal_page_t *pg);
static void portal_html_hidden(portal_buf_t *b, const portal_page_t *pg);
static void portal_html_str(portal_buf_t *b, const portal_page_t *pg,
    portal_str_t id);
static void portal_html_key_link(portal_buf_t *b, const portal_page_t *pg,
    const char *mode);
static void portal_html_code_field(portal_buf_t *b, const portal_page_t *pg,
    int autofocus);


static const char  portal_css[] =
    "body{font-family:system-ui,sans-serif;margin:0;background:#f4f5f7;"
    "color:#1b1f24;line-height:1.5}"
    "main{max-width:26rem;margin:3rem auto;background:#fff;padding:2rem;"
    "border:1px solid #c9ced6;border-radius:6px}"
    "h1{font-size:1.5rem;margin:0 0 1rem}"
    "label{display:block;font-weight:600;margin-top:1rem}"
    "input{display:block;width:100%;box-sizing:border-box;font-size:1rem;"
    "padding:.5rem;margin-top:.25rem;border:1px solid #6b7280;"
    "border-radius:4px}"
    "input:focus,button:focus,a:focus{outline:3px solid #1d4ed8;"
    "outline-offset:2px}"
    ".hint{font-size:.875rem;color:#4b5563;margin:.25rem 0 0}"
    "button{margin-top:1.5rem;font-size:1rem;padding:.6rem 1.2rem;"
    "background:#1d4ed8;color:#fff;border:0;border-radius:4px;"
    "cursor:pointer}"
    ".error{background:#fdecec;border:1px solid #b91c1c;color:#7f1d1d;"
    "padding:.75rem;border-radius:4px}"
    "a{color:#1d4ed8}";


void
portal_buf_addn(portal_buf_t *b, const char *s, size_t n)
{
    if (b->overflow || b->cap - b->len <= n) {
        b->overflow = 1;
        return;
    }

    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}


void
portal_buf_add(portal_buf_t *b, const char *s)
{
    portal_buf_addn(b, s, strlen(s));
}


void
portal_html_escape(portal_buf_t *b, const char *s)
{
    const char  *run;

    if (s == NULL) {
        return;
    }

    run = s;

    for (; *s != '\0'; s++) {
        const char  *rep;

        switch (*s) {
        case '&':
            rep = "&amp;";
            break;
        case '<':
            rep = "&lt;";
            break;
        case '>':
            rep = "&gt;";
            break;
        case '"':
            rep = "&quot;";
            break;
        case '\'':
            rep = "&#39;";
            break;
        default:
            rep = NULL;
            break;
        }

        if (rep != NULL) {
            portal_buf_addn(b, run, (size_t) (s - run));
            portal_buf_add(b, rep);
            run = s + 1;
        }
    }

    portal_buf_addn(b, run, (size_t) (s - run));
}


static void
portal_html_str(portal_buf_t *b, const portal_page_t *pg, portal_str_t id)
{
    portal_html_escape(b, portal_str(pg->lang, id));
}


static void
portal_html_head(portal_buf_t *b, const portal_page_t *pg,
    portal_str_t title)
{
    portal_buf_add(b, "<!DOCTYPE html>\n<html lang=\"");
    portal_buf_add(b, portal_lang_tag(pg->lang));
    portal_buf_add(b, "\">\n<head>\n<meta charset=\"utf-8\">\n"
                   "<meta name=\"viewport\" "
                   "content=\"width=device-width, initial-scale=1\">\n"
                   "<title>");
    portal_html_str(b, pg, title);
    portal_buf_add(b, "</title>\n<style>");
    portal_buf_add(b, portal_css);
    portal_buf_add(b, "</style>\n</head>\n<body>\n<main>\n<h1>");
    portal_html_str(b, pg, title);
    portal_buf_add(b, "</h1>\n");
}


/* The error text, announced by screen readers and named by the form. */
static void
portal_html_error(portal_buf_t *b, const portal_page_t *pg)
{
    if (pg->error == NULL || pg->error[0] == '\0') {
        return;
    }

    portal_buf_add(b, "<p id=\"zt-error\" class=\"error\" role=\"alert\">");
    portal_html_escape(b, pg->error);
    portal_buf_add(b, "</p>\n");
}


static void
portal_html_hidden(portal_buf_t *b, const portal_page_t *pg)
{
    portal_buf_add(b, "<input type=\"hidden\" name=\"csrf\" value=\"");
    portal_html_escape(b, pg->csrf);
    portal_buf_add(b, "\">\n");

    if (pg->next != NULL) {
        portal_buf_add(b, "<input type=\"hidden\" name=\"next\" value=\"");
        portal_html_escape(b, pg->next);
        portal_buf_add(b, "\">\n");
    }
}


/* "Use a security key instead", to /zt/webauthn/MODE?next=... */
static void
portal_html_key_link(portal_buf_t *b, const portal_page_t *pg,
    const char *mode)
{
    char  enc[3 * PORTAL_NEXT_MAX + 1];

    if (!pg->link_key) {
        return;
    }

    portal_buf_add(b, "<p><a id=\"zt-use-key\" href=\"/zt/webauthn/");
    portal_buf_add(b, mode);

    if (pg->next != NULL
        && portal_url_encode(pg->next, enc, sizeof(enc)) == 0)
    {
        portal_buf_add(b, "?next=");
        portal_html_escape(b, enc);
    }

    portal_buf_add(b, "\">");
    portal_html_str(b, pg, PORTAL_S_WA_USE_KEY);
    portal_buf_add(b, "</a></p>\n");
}


static void
portal_html_code_field(portal_buf_t *b, const portal_page_t *pg,
    int autofocus)
{
    portal_buf_add(b, "<label for=\"zt-code\">");
    portal_html_str(b, pg, PORTAL_S_LABEL_CODE);
    portal_buf_add(b, "</label>\n<input id=\"zt-code\" name=\"code\" "
                   "type=\"text\" inputmode=\"numeric\" "
                   "pattern=\"[0-9]{6,8}\" maxlength=\"8\" "
                   "autocomplete=\"one-time-code\" required "
                   "aria-describedby=\"zt-code-hint\"");
    if (autofocus) {
        portal_buf_add(b, " autofocus");
    }
    portal_buf_add(b, ">\n<p id=\"zt-code-hint\" class=\"hint\">");
    portal_html_str(b, pg, PORTAL_S_HINT_CODE);
    portal_buf_add(b, "</p>\n");
}


void
portal_html_page(portal_buf_t *b, const portal_page_t *pg)
{
    const char  *described;

    b->len = 0;
    b->overflow = 0;
    if (b->cap > 0) {
        b->p[0] = '\0';
    }

    described = (pg->error != NULL && pg->error[0] != '\0')
                ? " aria-describedby=\"zt-error\"" : "";

    switch (pg->kind) {

    case PORTAL_PAGE_LOGIN:
        portal_html_head(b, pg, PORTAL_S_TITLE_LOGIN);
        portal_html_error(b, pg);
        portal_buf_add(b, "<form method=\"post\" action=\"/zt/login\"");
        portal_buf_add(b, described);
        portal_buf_add(b, ">\n");
        portal_html_hidden(b, pg);
        portal_buf_add(b, "<label for=\"zt-user\">");
        portal_html_str(b, pg, PORTAL_S_LABEL_USER);
        portal_buf_add(b, "</label>\n<input id=\"zt-user\" name=\"user\" "
                       "type=\"text\" autocomplete=\"username\" "
                       "autocapitalize=\"none\" spellcheck=\"false\" "
                       "maxlength=\"63\" required");
        if (pg->user != NULL && pg->user[0] != '\0') {
            portal_buf_add(b, " value=\"");
            portal_html_escape(b, pg->user);
            portal_buf_add(b, "\"");
        } else {
            portal_buf_add(b, " autofocus");
        }
        portal_buf_add(b, ">\n<label for=\"zt-password\">");
        portal_html_str(b, pg, PORTAL_S_LABEL_PASSWORD);
        portal_buf_add(b, "</label>\n<input id=\"zt-password\" "
                       "name=\"password\" type=\"password\" "
                       "autocomplete=\"current-password\" required");
        if (pg->user != NULL && pg->user[0] != '\0') {
            portal_buf_add(b, " autofocus");
        }
        portal_buf_add(b, ">\n");
        portal_html_code_field(b, pg, 0);
        portal_buf_add(b, "<button type=\"submit\">");
        portal_html_str(b, pg, PORTAL_S_BUTTON_SIGN_IN);
        portal_buf_add(b, "</button>\n</form>\n");
        portal_html_key_link(b, pg, "login");
        break;

    case PORTAL_PAGE_STEPUP:
        portal_html_head(b, pg, PORTAL_S_TITLE_STEPUP);
        portal_html_error(b, pg);
        portal_buf_add(b, "<p>");
        portal_html_str(b, pg, PORTAL_S_STEPUP_INTRO);
        portal_buf_add(b, "</p>\n<p>");
        portal_html_str(b, pg, PORTAL_S_SIGNED_IN_AS);
        portal_buf_add(b, " <strong>");
        portal_html_escape(b, pg->user);
        portal_buf_add(b, "</strong></p>\n"
                       "<form method=\"post\" action=\"/zt/step-up\"");
        portal_buf_add(b, described);
        portal_buf_add(b, ">\n");
        portal_html_hidden(b, pg);
        portal_html_code_field(b, pg, 1);
        portal_buf_add(b, "<button type=\"submit\">");
        portal_html_str(b, pg, PORTAL_S_BUTTON_VERIFY);
        portal_buf_add(b, "</button>\n</form>\n");
        portal_html_key_link(b, pg, "step-up");
        break;

    case PORTAL_PAGE_LOGOUT:
        portal_html_head(b, pg, PORTAL_S_TITLE_LOGOUT);
        portal_html_error(b, pg);
        portal_buf_add(b, "<p>");
        portal_html_str(b, pg, PORTAL_S_LOGOUT_INTRO);
        portal_buf_add(b, "</p>\n<form method=\"post\" "
                       "action=\"/zt/logout\"");
        portal_buf_add(b, described);
        portal_buf_add(b, ">\n");
        portal_html_hidden(b, pg);
        portal_buf_add(b, "<button type=\"submit\" autofocus>");
        portal_html_str(b, pg, PORTAL_S_BUTTON_SIGN_OUT);
        portal_buf_add(b, "</button>\n</form>\n");
        break;

    case PORTAL_PAGE_MESSAGE:
    default:
        portal_html_head(b, pg, pg->title);
        if (pg->title == PORTAL_S_TITLE_SIGNED_OUT) {
            portal_buf_add(b, "<p role=\"status\">");
        } else {
            portal_buf_add(b, "<p role=\"alert\">");
        }
        portal_html_escape(b, pg->message);
        portal_buf_add(b, "</p>\n");
        if (pg->link_login) {
            portal_buf_add(b, "<p><a href=\"/zt/login\">");
            portal_html_str(b, pg, PORTAL_S_LINK_SIGN_IN);
            portal_buf_add(b, "</a></p>\n");
        }
        break;
    }

    portal_buf_add(b, "</main>\n</body>\n</html>\n");
}
