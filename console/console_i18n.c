/*
 * The console's strings in English and Traditional Chinese (Taiwan).
 * The language itself is chosen as the portal chooses it
 * (portal_lang_pick(), trustd/portal_i18n.c), or by the console's
 * language switch.  Every string exists in both languages; the unit test
 * checks that none is missing and that the printf formats agree.
 */

#include <stddef.h>

#include "console.h"


static const char  *console_strings[CONSOLE_NSTRINGS][PORTAL_NLANGS] = {

    [CONSOLE_S_APP] = {
        "ztgate staff console",
        "ztgate 管理主控台" },
    [CONSOLE_S_SKIP] = {
        "Skip to the content",
        "跳到主要內容" },
    [CONSOLE_S_NAV_MAIN] = {
        "Console",
        "主控台" },
    [CONSOLE_S_NAV_SEARCH] = {
        "Search",
        "搜尋" },
    [CONSOLE_S_NAV_NEW_USER] = {
        "Create a user",
        "建立使用者" },
    [CONSOLE_S_NAV_LANG] = {
        "Language",
        "語言" },
    [CONSOLE_S_SIGNED_IN_AS] = {
        "Signed in as",
        "目前登入的帳號" },
    [CONSOLE_S_TITLE_HOME] = {
        "Users and devices",
        "使用者與裝置" },
    [CONSOLE_S_SEARCH_LABEL] = {
        "Search users and devices",
        "搜尋使用者與裝置" },
    [CONSOLE_S_SEARCH_HINT] = {
        "A user name, display name or group; a device name, owner, id or "
        "fingerprint. Leave empty to list everything.",
        "可輸入帳號、顯示名稱或群組；或裝置名稱、擁有者、識別碼或指紋。"
        "留空則列出全部。" },
    [CONSOLE_S_SEARCH_BUTTON] = {
        "Search",
        "搜尋" },
    [CONSOLE_S_USERS] = {
        "Users",
        "使用者" },
    [CONSOLE_S_DEVICES] = {
        "Devices",
        "裝置" },
    [CONSOLE_S_SESSIONS] = {
        "Sessions",
        "登入工作階段" },
    [CONSOLE_S_NONE_FOUND] = {
        "None found.",
        "查無資料。" },
    [CONSOLE_S_TRUNCATED] = {
        "Only the first %u are shown; narrow the search.",
        "僅顯示前 %u 筆，請縮小搜尋範圍。" },
    [CONSOLE_S_COL_USER] = {
        "User",
        "帳號" },
    [CONSOLE_S_COL_DISPLAY] = {
        "Display name",
        "顯示名稱" },
    [CONSOLE_S_COL_GROUPS] = {
        "Groups",
        "群組" },
    [CONSOLE_S_COL_PASSWORD] = {
        "Password",
        "密碼" },
    [CONSOLE_S_COL_TOTP] = {
        "Authenticator",
        "驗證器" },
    [CONSOLE_S_COL_STATUS] = {
        "Status",
        "狀態" },
    [CONSOLE_S_COL_DEVICE] = {
        "Device",
        "裝置" },
    [CONSOLE_S_COL_OWNER] = {
        "Owner",
        "擁有者" },
    [CONSOLE_S_COL_ID] = {
        "Device id",
        "裝置識別碼" },
    [CONSOLE_S_COL_FINGERPRINT] = {
        "Fingerprint",
        "憑證指紋" },
    [CONSOLE_S_COL_PLATFORM] = {
        "Platform",
        "平台" },
    [CONSOLE_S_COL_EXPIRES] = {
        "Expires",
        "到期時間" },
    [CONSOLE_S_COL_CREATED] = {
        "Created",
        "建立時間" },
    [CONSOLE_S_COL_ENROLLED] = {
        "Enrolled",
        "註冊時間" },
    [CONSOLE_S_COL_SESSION] = {
        "Session",
        "工作階段" },
    [CONSOLE_S_COL_BOUND] = {
        "Bound to a device",
        "綁定裝置" },
    [CONSOLE_S_COL_MFA] = {
        "Last second factor",
        "最近一次第二因素驗證" },
    [CONSOLE_S_COL_LAST_SEEN] = {
        "Last seen",
        "最近使用" },
    [CONSOLE_S_COL_SOURCE] = {
        "From",
        "來源位址" },
    [CONSOLE_S_COL_ACTION] = {
        "Action",
        "操作" },
    [CONSOLE_S_YES] = {
        "yes",
        "是" },
    [CONSOLE_S_NO] = {
        "no",
        "否" },
    [CONSOLE_S_NEVER] = {
        "never",
        "從未" },
    [CONSOLE_S_STATE_ACTIVE] = {
        "active",
        "使用中" },
    [CONSOLE_S_STATE_LOCKED] = {
        "locked",
        "已鎖定" },
    [CONSOLE_S_STATE_DISABLED] = {
        "disabled",
        "已停用" },
    [CONSOLE_S_STATE_REVOKED] = {
        "revoked",
        "已撤銷" },
    [CONSOLE_S_STATE_EXPIRED] = {
        "expired",
        "已過期" },
    [CONSOLE_S_TOTP_NONE] = {
        "none",
        "未設定" },
    [CONSOLE_S_TOTP_PENDING] = {
        "pending confirmation",
        "等待確認" },
    [CONSOLE_S_TOTP_ACTIVE] = {
        "active",
        "已啟用" },
    [CONSOLE_S_DEV_ACTIVE] = {
        "active",
        "使用中" },
    [CONSOLE_S_DEV_QUARANTINED] = {
        "quarantined",
        "已隔離" },
    [CONSOLE_S_DEV_REVOKED] = {
        "revoked",
        "已撤銷" },
    [CONSOLE_S_TITLE_NEW_USER] = {
        "Create a user",
        "建立使用者" },
    [CONSOLE_S_LABEL_NAME] = {
        "User name",
        "帳號" },
    [CONSOLE_S_HINT_NAME] = {
        "1 to 63 characters: a-z, 0-9, dot, underscore and hyphen, "
        "starting with a letter or a digit.",
        "1 至 63 個字元：a-z、0-9、句點、底線及連字號，"
        "須以英文字母或數字開頭。" },
    [CONSOLE_S_LABEL_DISPLAY] = {
        "Display name",
        "顯示名稱" },
    [CONSOLE_S_LABEL_GROUPS] = {
        "Groups",
        "群組" },
    [CONSOLE_S_HINT_GROUPS] = {
        "Separated by commas, for example: staff, hr. At most 16.",
        "以逗號分隔，例如：staff, hr。最多 16 個。" },
    [CONSOLE_S_LEGEND_PASSWORD] = {
        "Password",
        "密碼" },
    [CONSOLE_S_PW_GENERATE] = {
        "Generate a password and show it to me once",
        "產生一組密碼，並只顯示一次" },
    [CONSOLE_S_PW_SET] = {
        "Set this password",
        "使用下列密碼" },
    [CONSOLE_S_LABEL_PASSWORD] = {
        "New password",
        "新密碼" },
    [CONSOLE_S_LABEL_PASSWORD2] = {
        "New password again",
        "再次輸入新密碼" },
    [CONSOLE_S_HINT_PASSWORD] = {
        "At least %u characters. Only used with \"Set this password\".",
        "至少 %u 個字元。僅在選擇「使用下列密碼」時使用。" },
    [CONSOLE_S_BUTTON_CREATE] = {
        "Create the user",
        "建立使用者" },
    [CONSOLE_S_TITLE_CREATED] = {
        "User %s created",
        "已建立使用者 %s" },
    [CONSOLE_S_ONE_TIME_PASSWORD] = {
        "Password",
        "密碼" },
    [CONSOLE_S_SHOWN_ONCE] = {
        "This is shown only once and is not stored anywhere readable. Give "
        "it to the user in person, then leave this page.",
        "此內容只會顯示這一次，系統不會以可讀形式保存。請當面交給使用者，"
        "然後離開此頁面。" },
    [CONSOLE_S_NEXT_STEP_USER] = {
        "Continue with the user's authenticator and devices",
        "繼續設定此使用者的驗證器與裝置" },
    [CONSOLE_S_TITLE_USER] = {
        "User %s",
        "使用者 %s" },
    [CONSOLE_S_SECTION_ACCOUNT] = {
        "Account",
        "帳號資料" },
    [CONSOLE_S_CREATED_BY] = {
        "%s by %s",
        "%s，由 %s 建立" },
    [CONSOLE_S_SECTION_PASSWORD] = {
        "Password",
        "密碼" },
    [CONSOLE_S_BUTTON_PASSWORD] = {
        "Set the password",
        "設定密碼" },
    [CONSOLE_S_SECTION_TOTP] = {
        "Authenticator (TOTP)",
        "驗證器（TOTP）" },
    [CONSOLE_S_TOTP_INTRO_NONE] = {
        "No authenticator is enrolled: the user cannot sign in yet. Do this "
        "with the user present, because the secret is shown once.",
        "尚未設定驗證器，使用者目前無法登入。請在使用者在場時進行，因為金鑰"
        "只會顯示一次。" },
    [CONSOLE_S_TOTP_INTRO_PENDING] = {
        "An enrollment is waiting for a code from the user's authenticator. "
        "Confirm it, or start over with a new secret.",
        "驗證器設定正在等待使用者輸入驗證碼。"
        "請完成確認，或以新的金鑰重新開始。" },
    [CONSOLE_S_TOTP_INTRO_ACTIVE] = {
        "The authenticator is active. Reset it only after checking the "
        "caller's identity: resetting also signs the user out everywhere.",
        "驗證器已啟用。請先確認來電者身分後再重設：重設會同時登出此使用者的"
        "所有工作階段。" },
    [CONSOLE_S_BUTTON_TOTP_START] = {
        "Start enrolling an authenticator",
        "開始設定驗證器" },
    [CONSOLE_S_BUTTON_TOTP_RESET] = {
        "Reset the authenticator",
        "重設驗證器" },
    [CONSOLE_S_TITLE_TOTP] = {
        "Enroll an authenticator for %s",
        "為 %s 設定驗證器" },
    [CONSOLE_S_TOTP_STEP_SCAN] = {
        "Let the user scan this QR code with the authenticator app.",
        "請使用者以驗證器應用程式掃描此 QR Code。" },
    [CONSOLE_S_TOTP_QR_LABEL] = {
        "QR code of the authenticator enrollment for %s",
        "%s 的驗證器設定 QR Code" },
    [CONSOLE_S_TOTP_STEP_TYPE] = {
        "Or let the user type this secret into the app (time-based, "
        "6 digits, 30 seconds):",
        "或請使用者在應用程式中手動輸入此金鑰"
        "（依時間產生、6 位數、每 30 秒）：" },
    [CONSOLE_S_TOTP_STEP_CODE] = {
        "Then ask for the code the app shows and confirm it. Only a correct "
        "code makes the authenticator active.",
        "接著請使用者提供應用程式顯示的驗證碼並確認。只有正確的驗證碼才會"
        "啟用驗證器。" },
    [CONSOLE_S_LABEL_CODE] = {
        "Code from the authenticator",
        "驗證器上的驗證碼" },
    [CONSOLE_S_HINT_CODE] = {
        "6 digits; spaces are ignored.",
        "6 位數字；空格會被忽略。" },
    [CONSOLE_S_BUTTON_CONFIRM] = {
        "Confirm",
        "確認" },
    [CONSOLE_S_SECTION_DEVICES] = {
        "Devices",
        "裝置" },
    [CONSOLE_S_SECTION_ENROLL] = {
        "Enroll a device",
        "註冊裝置" },
    [CONSOLE_S_LABEL_DEVICE_NAME] = {
        "Device name",
        "裝置名稱" },
    [CONSOLE_S_LABEL_PLATFORM] = {
        "Platform (optional)",
        "平台（選填）" },
    [CONSOLE_S_LEGEND_KEY] = {
        "The device's key",
        "裝置金鑰" },
    [CONSOLE_S_KEY_P12] = {
        "Generate a key and a certificate as a PKCS#12 file",
        "產生金鑰與憑證（PKCS#12 檔案）" },
    [CONSOLE_S_KEY_CSR] = {
        "The device made its own key: upload its certificate request (CSR)",
        "裝置已自行產生金鑰：上傳其憑證簽署要求（CSR）" },
    [CONSOLE_S_LABEL_CSR] = {
        "Certificate request (PEM)",
        "憑證簽署要求（PEM 格式）" },
    [CONSOLE_S_HINT_CSR] = {
        "Preferred: the private key never leaves the device. Only used "
        "with the certificate request option.",
        "建議使用：私鑰不會離開裝置。僅在選擇上傳憑證簽署要求時使用。" },
    [CONSOLE_S_BUTTON_ENROLL] = {
        "Issue the certificate and enroll the device",
        "簽發憑證並註冊裝置" },
    [CONSOLE_S_NO_CA] = {
        "This console has no device CA configured (ca_dir): enroll devices "
        "with ztca and ztctl.",
        "此主控台未設定裝置憑證機構（ca_dir）："
        "請使用 ztca 與 ztctl 註冊裝置。" },
    [CONSOLE_S_TITLE_ENROLLED] = {
        "Device enrolled",
        "裝置已註冊" },
    [CONSOLE_S_P12_PASSPHRASE] = {
        "One-time passphrase of the PKCS#12 file",
        "PKCS#12 檔案的一次性密碼" },
    [CONSOLE_S_P12_DOWNLOAD] = {
        "Download the PKCS#12 file",
        "下載 PKCS#12 檔案" },
    [CONSOLE_S_CRT_DOWNLOAD] = {
        "Download the certificate",
        "下載憑證" },
    [CONSOLE_S_P12_HINT] = {
        "The file holds the device's private key: import it on the device "
        "only, with the passphrase, then delete every copy of the file. "
        "Neither is kept by the console.",
        "此檔案含有裝置私鑰：請僅在該裝置上以此密碼匯入，之後刪除所有檔案副本。"
        "主控台不會保存檔案或密碼。" },
    [CONSOLE_S_CRT_HINT] = {
        "Install the certificate on the device together with the key it "
        "made.",
        "請將憑證安裝到裝置上，與裝置自行產生的金鑰搭配使用。" },
    [CONSOLE_S_SECTION_SESSIONS] = {
        "Sessions",
        "登入工作階段" },
    [CONSOLE_S_BUTTON_REVOKE] = {
        "Revoke",
        "撤銷" },
    [CONSOLE_S_BUTTON_REVOKE_ALL] = {
        "Revoke all of the user's sessions",
        "撤銷此使用者的所有工作階段" },
    [CONSOLE_S_REVOKE_SESSION_LABEL] = {
        "Revoke session %s",
        "撤銷工作階段 %s" },
    [CONSOLE_S_TITLE_DEVICE] = {
        "Device %s",
        "裝置 %s" },
    [CONSOLE_S_SECTION_STATUS] = {
        "Change the status",
        "變更狀態" },
    [CONSOLE_S_LABEL_NEW_STATUS] = {
        "New status",
        "新狀態" },
    [CONSOLE_S_DO_QUARANTINE] = {
        "Quarantine (no longer counts as an enrolled device)",
        "隔離（不再視為已註冊裝置）" },
    [CONSOLE_S_DO_REVOKE] = {
        "Revoke (always denied)",
        "撤銷（一律拒絕存取）" },
    [CONSOLE_S_DO_ACTIVATE] = {
        "Activate",
        "啟用" },
    [CONSOLE_S_LABEL_REASON] = {
        "Reason (recorded in the audit journal)",
        "原因（記錄於稽核日誌）" },
    [CONSOLE_S_BUTTON_STATUS] = {
        "Change the status",
        "變更狀態" },
    [CONSOLE_S_REVOKE_CA_HINT] = {
        "For a lost or stolen device, also revoke its certificate at the CA "
        "and publish a new CRL (ztca revoke, ztca crl).",
        "若裝置遺失或遭竊，請同時向憑證機構撤銷其憑證並發布新的 CRL"
        "（ztca revoke、ztca crl）。" },
    [CONSOLE_S_DONE_PASSWORD] = {
        "The password has been set.",
        "密碼已設定。" },
    [CONSOLE_S_DONE_TOTP_ACTIVE] = {
        "The authenticator is active.",
        "驗證器已啟用。" },
    [CONSOLE_S_DONE_TOTP_RESET] = {
        "The authenticator has been removed and %u sessions revoked.",
        "驗證器已移除，並已撤銷 %u 個工作階段。" },
    [CONSOLE_S_DONE_SESSION_REVOKED] = {
        "The session has been revoked.",
        "工作階段已撤銷。" },
    [CONSOLE_S_DONE_SESSIONS_REVOKED] = {
        "%u sessions have been revoked.",
        "已撤銷 %u 個工作階段。" },
    [CONSOLE_S_DONE_STATUS] = {
        "The device's status has been changed.",
        "裝置狀態已變更。" },
    [CONSOLE_S_ERR_HEADING] = {
        "Error",
        "錯誤" },
    [CONSOLE_S_ERR_FORBIDDEN] = {
        "The staff console is only for members of the staff group, signed "
        "in with a recent second factor on their own enrolled device.",
        "管理主控台僅供 staff 群組成員使用，且須於自己已註冊的裝置上登入，"
        "並於近期完成第二因素驗證。" },
    [CONSOLE_S_ERR_CSRF] = {
        "This form has expired or did not come from this console. Go back, "
        "reload the page and try again.",
        "此表單已過期或並非由本主控台送出。請返回並重新整理頁面後再試一次。" },
    [CONSOLE_S_ERR_NOT_FOUND] = {
        "This page does not exist.",
        "找不到此頁面。" },
    [CONSOLE_S_ERR_NO_USER] = {
        "There is no such user.",
        "查無此使用者。" },
    [CONSOLE_S_ERR_NO_DEVICE] = {
        "There is no such device.",
        "查無此裝置。" },
    [CONSOLE_S_ERR_METHOD] = {
        "This request method is not allowed here.",
        "此頁面不接受這種要求方式。" },
    [CONSOLE_S_ERR_TOO_LARGE] = {
        "The submitted form is too large.",
        "送出的表單資料過大。" },
    [CONSOLE_S_ERR_BAD_REQUEST] = {
        "The request could not be understood.",
        "無法處理此要求。" },
    [CONSOLE_S_ERR_INTERNAL] = {
        "A problem on our side kept us from completing this. Nothing was "
        "changed unless the page says so; try again later.",
        "系統發生問題，無法完成此操作。除非頁面另有說明，否則未做任何變更；"
        "請稍後再試。" },
    [CONSOLE_S_ERR_NAME] = {
        "The user name is not valid.",
        "帳號格式不正確。" },
    [CONSOLE_S_ERR_DISPLAY] = {
        "The display name must be printable text of at most 127 bytes.",
        "顯示名稱須為可列印的文字，最多 127 個位元組。" },
    [CONSOLE_S_ERR_GROUPS] = {
        "The groups are not valid: at most 16 names of a-z, 0-9 and . _ - @.",
        "群組格式不正確：最多 16 個，僅能包含 a-z、0-9 及 . _ - @。" },
    [CONSOLE_S_ERR_EXISTS] = {
        "A user with this name already exists.",
        "已有使用此帳號的使用者。" },
    [CONSOLE_S_ERR_PASSWORD_SHORT] = {
        "The password must have at least %u characters and no control "
        "characters.",
        "密碼至少需要 %u 個字元，且不可包含控制字元。" },
    [CONSOLE_S_ERR_PASSWORD_DIFFER] = {
        "The two passwords differ.",
        "兩次輸入的密碼不一致。" },
    [CONSOLE_S_ERR_TOTP_ACTIVE] = {
        "The user already has an active authenticator; reset it first.",
        "此使用者已啟用驗證器，請先重設。" },
    [CONSOLE_S_ERR_TOTP_NOT_PENDING] = {
        "The user has no authenticator waiting for confirmation.",
        "此使用者沒有等待確認的驗證器。" },
    [CONSOLE_S_ERR_CODE] = {
        "The code is not correct: the authenticator stays pending. Check "
        "the phone's clock and try the next code.",
        "驗證碼不正確，驗證器仍維持等待確認。"
        "請檢查手機時間後再試下一組驗證碼。" },
    [CONSOLE_S_ERR_CHANGED] = {
        "The enrollment changed meanwhile (someone started over); nothing "
        "was done.",
        "設定在此期間已被變更（有人重新開始設定），未做任何變更。" },
    [CONSOLE_S_ERR_DEVICE_FIELDS] = {
        "Give the device a name (printable text) and, if you like, a "
        "platform.",
        "請填寫裝置名稱（可列印文字），平台可選填。" },
    [CONSOLE_S_ERR_CSR] = {
        "The certificate request was refused: it must be a PEM certificate "
        "request with a valid signature and an acceptable key.",
        "憑證簽署要求未被接受：須為 PEM 格式、簽章有效且金鑰類型可接受。" },
    [CONSOLE_S_ERR_SESSION] = {
        "There is no such session of this user.",
        "此使用者沒有這個工作階段。" },
    [CONSOLE_S_ERR_STATUS] = {
        "Choose a new status.",
        "請選擇新狀態。" },
    [CONSOLE_S_BACK_TO_USER] = {
        "Back to the user",
        "返回使用者頁面" },
};


const char *
console_str(portal_lang_t lang, console_str_t id)
{
    const char  *s;

    if ((unsigned) id >= CONSOLE_NSTRINGS) {
        return "";
    }

    if ((unsigned) lang >= PORTAL_NLANGS) {
        lang = PORTAL_LANG_EN;
    }

    s = console_strings[id][lang];

    if (s == NULL) {
        s = console_strings[id][PORTAL_LANG_EN];
    }

    return (s != NULL) ? s : "";
}
