//! SpamAssassin's OLEVBMacro eval functions, over what the view read of the attachments
//! ([`crate::spam::view::attachments`]), and the rules that call them: SpamAssassin ships
//! the plugin without rules, so sites copy them from its documentation; we ship them built
//! in, with scores a site changes in local.cf.

use super::Func;

pub(super) fn lookup(name: &str) -> Option<Func> {
    Some(match name {
        "check_olemacro" => |c, _| c.view.attachments.macros.any(),
        // SpamAssassin calls a macro malicious when it runs on open; we also when it starts
        // programs or reaches the network.
        "check_olemacro_malice" => |c, _| {
            let m = &c.view.attachments.macros;
            m.any() && (m.auto_exec || m.suspicious)
        },
        "check_olemacro_encrypted" => |c, _| c.view.attachments.macros.encrypted,
        "check_olemacro_renamed" => |c, _| c.view.attachments.renamed,
        "check_olemacro_zip_password" => |c, _| c.view.attachments.zip_password,
        "check_olemacro_csv" => |c, _| c.view.attachments.csv_dde,
        "check_olemacro_download_exe" => |c, _| c.view.attachments.macros.download_exe,
        "check_olemacro_redirect_uri" => |c, _| {
            c.view.attachments.macros.external.iter().any(|t| {
                let l = t.to_ascii_lowercase();
                l.starts_with("http://") || l.starts_with("https://")
            })
        },
        "check_olemacro_mhtml_uri" => |c, _| {
            c.view.attachments.macros.external.iter().any(|t| {
                let l = t.to_ascii_lowercase();
                l.starts_with("mhtml:") || l.starts_with("file://")
            })
        },
        "check_oleobject" => |c, _| c.view.attachments.macros.object,
        "check_olertfobject" => |c, _| c.view.attachments.macros.rtf_object,
        _ => return None,
    })
}

/// The rules, read after the rule directory and before the site's files (so `score` lines
/// in local.cf override them). The names and descriptions are those SpamAssassin's
/// OLEVBMacro documentation gives.
pub const RULES: &str = "
body     OLEMACRO               eval:check_olemacro()
describe OLEMACRO               Attachment has an Office Macro
score    OLEMACRO               0.1
body     OLEMACRO_MALICE        eval:check_olemacro_malice()
describe OLEMACRO_MALICE        Potentially malicious Office Macro
score    OLEMACRO_MALICE        2.5
body     OLEMACRO_ENCRYPTED     eval:check_olemacro_encrypted()
describe OLEMACRO_ENCRYPTED     Has an encrypted Office document attached
score    OLEMACRO_ENCRYPTED     0.1
body     OLEMACRO_RENAME        eval:check_olemacro_renamed()
describe OLEMACRO_RENAME        Has an Office doc attached with a renamed extension
score    OLEMACRO_RENAME        1.0
body     OLEMACRO_ZIP_PW        eval:check_olemacro_zip_password()
describe OLEMACRO_ZIP_PW        Has an Office doc attached in a password-protected zip
score    OLEMACRO_ZIP_PW        0.1
body     OLEMACRO_CSV           eval:check_olemacro_csv()
describe OLEMACRO_CSV           Malicious csv file that tries to exec cmd.exe detected
score    OLEMACRO_CSV           2.5
body     OLEMACRO_DOWNLOAD_EXE  eval:check_olemacro_download_exe()
describe OLEMACRO_DOWNLOAD_EXE  Malicious code inside the Office doc that tries to download a .exe file detected
score    OLEMACRO_DOWNLOAD_EXE  2.5
body     OLEMACRO_URI_TARGET    eval:check_olemacro_redirect_uri()
describe OLEMACRO_URI_TARGET    Uri inside an Office doc
score    OLEMACRO_URI_TARGET    1.0
body     OLEMACRO_MHTML_TARGET  eval:check_olemacro_mhtml_uri()
describe OLEMACRO_MHTML_TARGET  Malicious MHTML uri inside an Office doc
score    OLEMACRO_MHTML_TARGET  2.5
body     OLEOBJ                 eval:check_oleobject()
describe OLEOBJ                 Has an embedded OLE object
score    OLEOBJ                 0.1
body     OLERTF                 eval:check_olertfobject()
describe OLERTF                 Has an embedded RTF document
score    OLERTF                 0.1
";
