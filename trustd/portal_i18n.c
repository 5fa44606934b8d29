/*
 * Portal languages: English and Traditional Chinese (Taiwan), chosen by
 * Accept-Language.  Every string exists in both; the unit test checks
 * that no entry is missing.  See portal.h.
 */

#include <stddef.h>
#include <string.h>
#include <strings.h>

#include "portal.h"


#define PORTAL_LANG_UNSUPPORTED  (-1)


static int portal_lang_match(const char *tag, size_t len);
static int portal_tag_is(const char *tag, size_t len, const char *what,
    int prefix);
static int portal_qvalue(const char *p, const char *end);


static const char  *portal_strings[PORTAL_NSTRINGS][PORTAL_NLANGS] = {

    [PORTAL_S_TITLE_LOGIN] = {
        "Sign in",
        "登入" },
    [PORTAL_S_TITLE_STEPUP] = {
        "Confirm it is you",
        "確認您的身分" },
    [PORTAL_S_TITLE_LOGOUT] = {
        "Sign out",
        "登出" },
    [PORTAL_S_TITLE_SIGNED_OUT] = {
        "Signed out",
        "已登出" },
    [PORTAL_S_TITLE_ERROR] = {
        "Something went wrong",
        "發生問題" },
    [PORTAL_S_LABEL_USER] = {
        "Username",
        "帳號" },
    [PORTAL_S_LABEL_PASSWORD] = {
        "Password",
        "密碼" },
    [PORTAL_S_LABEL_CODE] = {
        "Verification code",
        "驗證碼" },
    [PORTAL_S_HINT_CODE] = {
        "The code shown in your authenticator app.",
        "請輸入驗證器應用程式上顯示的驗證碼。" },
    [PORTAL_S_BUTTON_SIGN_IN] = {
        "Sign in",
        "登入" },
    [PORTAL_S_BUTTON_VERIFY] = {
        "Verify",
        "驗證" },
    [PORTAL_S_BUTTON_SIGN_OUT] = {
        "Sign out",
        "登出" },
    [PORTAL_S_STEPUP_INTRO] = {
        "This page needs a recent verification. Enter a new code from "
        "your authenticator app.",
        "此頁面需要重新驗證身分，請輸入驗證器應用程式上的新驗證碼。" },
    [PORTAL_S_SIGNED_IN_AS] = {
        "Signed in as",
        "目前登入的帳號" },
    [PORTAL_S_LOGOUT_INTRO] = {
        "Do you want to sign out? You will need to sign in again to use "
        "the protected applications.",
        "確定要登出嗎？登出後，使用受保護的應用程式前需要重新登入。" },
    [PORTAL_S_SIGNED_OUT] = {
        "You have been signed out.",
        "您已登出。" },
    [PORTAL_S_LINK_SIGN_IN] = {
        "Go to the sign-in page",
        "前往登入頁面" },
    [PORTAL_S_ERR_FAILED] = {
        "Sign-in failed. Check your username, password and verification "
        "code, then try again.",
        "登入失敗。請確認帳號、密碼及驗證碼後再試一次。" },
    [PORTAL_S_ERR_LOCKED_ONE] = {
        "This account is temporarily locked. Try again in 1 minute.",
        "此帳號已暫時鎖定，請於 1 分鐘後再試。" },
    [PORTAL_S_ERR_LOCKED_MANY] = {
        "This account is temporarily locked. Try again in %u minutes.",
        "此帳號已暫時鎖定，請於 %u 分鐘後再試。" },
    [PORTAL_S_ERR_NO_TOTP] = {
        "No authenticator is enrolled for this account. Contact the help "
        "desk.",
        "此帳號尚未設定驗證器，請聯絡服務台。" },
    [PORTAL_S_ERR_REPLAY] = {
        "This code has already been used. Wait for a new code and try "
        "again.",
        "此驗證碼已使用過，請等候新的驗證碼後再試一次。" },
    [PORTAL_S_ERR_CODE] = {
        "The verification code is not correct. Try again.",
        "驗證碼不正確，請再試一次。" },
    [PORTAL_S_ERR_CSRF] = {
        "This form has expired or did not come from this site. Please "
        "try again.",
        "此表單已過期或並非由本網站送出，請重新操作。" },
    [PORTAL_S_ERR_RATE] = {
        "Too many sign-in attempts from your network. Wait a minute and "
        "try again.",
        "來自您網路的登入嘗試次數過多，請稍候一分鐘再試。" },
    [PORTAL_S_ERR_NOT_FOUND] = {
        "This page does not exist.",
        "找不到此頁面。" },
    [PORTAL_S_ERR_METHOD] = {
        "This request method is not allowed here.",
        "此頁面不接受這種要求方式。" },
    [PORTAL_S_ERR_TOO_LARGE] = {
        "The submitted form is too large.",
        "送出的表單資料過大。" },
    [PORTAL_S_ERR_BAD_REQUEST] = {
        "The request could not be understood.",
        "無法處理此要求。" },
    [PORTAL_S_ERR_INTERNAL] = {
        "A problem on our side kept us from completing this. Please try "
        "again later.",
        "系統發生問題，暫時無法完成此操作，請稍後再試。" },
    [PORTAL_S_ERR_HEADING] = {
        "Error",
        "錯誤" },
    [PORTAL_S_WA_TITLE_REGISTER] = {
        "Register a security key",
        "註冊安全金鑰" },
    [PORTAL_S_WA_TITLE_LOGIN] = {
        "Sign in with a security key",
        "使用安全金鑰登入" },
    [PORTAL_S_WA_TITLE_STEPUP] = {
        "Confirm with your security key",
        "以安全金鑰確認身分" },
    [PORTAL_S_WA_ACCOUNT] = {
        "Account:",
        "帳號：" },
    [PORTAL_S_WA_KEY_NAME] = {
        "Name for this key",
        "此金鑰的名稱" },
    [PORTAL_S_WA_DEFAULT_NAME] = {
        "Security key",
        "安全金鑰" },
    [PORTAL_S_WA_BUTTON] = {
        "Use security key",
        "使用安全金鑰" },
    [PORTAL_S_WA_USE_CODE] = {
        "Sign in with an authenticator code instead",
        "改用驗證器驗證碼登入" },
    [PORTAL_S_WA_USE_KEY] = {
        "Use a security key instead",
        "改用安全金鑰" },
    [PORTAL_S_WA_REGISTERED] = {
        "Security key registered",
        "安全金鑰已註冊" },
    [PORTAL_S_WA_KEYS_TITLE] = {
        "Your security keys",
        "您的安全金鑰" },
    [PORTAL_S_WA_KEYS_NONE] = {
        "You have no security key.",
        "您沒有任何安全金鑰。" },
    [PORTAL_S_WA_KEYS_REMOVE] = {
        "Remove",
        "移除" },
    [PORTAL_S_WA_KEYS_SUSPENDED] = {
        "suspended: it may have been copied; remove it and ask for a new one",
        "已停用：可能遭複製，請移除後申請新的金鑰" },
    [PORTAL_S_WA_KEYS_LAST_USED] = {
        "last used",
        "上次使用" },
    [PORTAL_S_WA_KEYS_NEVER] = {
        "never used",
        "尚未使用" },
    [PORTAL_S_WA_SIGN_IN_WITH_IT] = {
        "Sign in with it",
        "使用此金鑰登入" },
};


const char *
portal_str(portal_lang_t lang, portal_str_t id)
{
    const char  *s;

    if ((unsigned) id >= PORTAL_NSTRINGS) {
        return "";
    }

    if ((unsigned) lang >= PORTAL_NLANGS) {
        lang = PORTAL_LANG_EN;
    }

    s = portal_strings[id][lang];

    if (s == NULL) {
        s = portal_strings[id][PORTAL_LANG_EN];
    }

    return (s != NULL) ? s : "";
}


const char *
portal_lang_tag(portal_lang_t lang)
{
    return (lang == PORTAL_LANG_ZH_TW) ? "zh-TW" : "en";
}


/* tag equals what, or (prefix) starts with what followed by "-". */
static int
portal_tag_is(const char *tag, size_t len, const char *what, int prefix)
{
    size_t  n;

    n = strlen(what);

    if (len < n || strncasecmp(tag, what, n) != 0) {
        return 0;
    }

    return len == n || (prefix && tag[n] == '-');
}


static int
portal_lang_match(const char *tag, size_t len)
{
    if (portal_tag_is(tag, len, "*", 0)
        || portal_tag_is(tag, len, "en", 1))
    {
        return PORTAL_LANG_EN;
    }

    if (portal_tag_is(tag, len, "zh", 0)
        || portal_tag_is(tag, len, "zh-tw", 1)
        || portal_tag_is(tag, len, "zh-hk", 1)
        || portal_tag_is(tag, len, "zh-mo", 1)
        || portal_tag_is(tag, len, "zh-hant", 1))
    {
        return PORTAL_LANG_ZH_TW;
    }

    return PORTAL_LANG_UNSUPPORTED;
}


/*
 * The q parameter among ";"-separated parameters in [p, end), in
 * thousandths: 1000 without one, -1 when malformed.
 */
static int
portal_qvalue(const char *p, const char *end)
{
    int     q, digits;

    while (p < end) {
        while (p < end && (*p == ';' || *p == ' ' || *p == '\t')) {
            p++;
        }

        if (end - p >= 2 && (p[0] == 'q' || p[0] == 'Q') && p[1] == '=') {
            p += 2;

            if (p < end && *p == '1') {
                p++;
                if (p < end && *p == '.') {
                    p++;
                    while (p < end && *p == '0') {
                        p++;
                    }
                }
                q = 1000;

            } else if (p < end && *p == '0') {
                p++;
                q = 0;

                if (p < end && *p == '.') {
                    p++;
                    for (digits = 0; digits < 3 && p < end
                         && *p >= '0' && *p <= '9'; digits++)
                    {
                        q = q * 10 + (*p++ - '0');
                    }
                    for (; digits < 3; digits++) {
                        q *= 10;
                    }
                }

            } else {
                return -1;
            }

            while (p < end && (*p == ' ' || *p == '\t')) {
                p++;
            }

            if (p < end && *p != ';') {
                return -1;
            }

            return q;
        }

        while (p < end && *p != ';') {
            p++;
        }
    }

    return 1000;
}


portal_lang_t
portal_lang_pick(const char *accept)
{
    const char  *p, *item_end, *tag_end;
    int          best, best_q, lang, q;

    best = PORTAL_LANG_EN;
    best_q = 0;

    if (accept == NULL) {
        return PORTAL_LANG_EN;
    }

    p = accept;

    while (*p != '\0') {
        while (*p == ' ' || *p == '\t' || *p == ',') {
            p++;
        }

        item_end = strchr(p, ',');
        if (item_end == NULL) {
            item_end = p + strlen(p);
        }

        tag_end = p;
        while (tag_end < item_end && *tag_end != ';' && *tag_end != ' '
               && *tag_end != '\t')
        {
            tag_end++;
        }

        if (tag_end > p) {
            lang = portal_lang_match(p, (size_t) (tag_end - p));
            q = portal_qvalue(tag_end, item_end);

            if (lang != PORTAL_LANG_UNSUPPORTED && q > best_q) {
                best = lang;
                best_q = q;
            }
        }

        p = item_end;
    }

    return (portal_lang_t) best;
}
