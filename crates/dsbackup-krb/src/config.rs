//! The KDCs of a realm from the text of a `krb5.conf` ([MIT krb5.conf(5)]): the `kdc` lines of
//! the realm's entry under `[realms]`, and `default_realm` under `[libdefaults]`.
//!
//! [MIT krb5.conf(5)]: https://web.mit.edu/kerberos/krb5-latest/doc/admin/conf_files/krb5_conf.html

/// What a `krb5.conf` says about realms.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Krb5Conf {
    /// `default_realm` of `[libdefaults]`.
    pub default_realm: Option<String>,
    /// `(realm, kdc)` pairs of `[realms]`, in file order.
    pub kdcs: Vec<(String, String)>,
}

impl Krb5Conf {
    /// Parses the text of a `krb5.conf`; lines it does not understand are ignored.
    pub fn parse(text: &str) -> Self {
        let mut conf = Self::default();
        let mut section = String::new();
        let mut realm: Option<String> = None;
        for raw in text.lines() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
                continue;
            }
            if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                section = name.trim().to_owned();
                realm = None;
                continue;
            }
            if line.starts_with('}') {
                realm = None;
                continue;
            }
            let Some((key, value)) = line.split_once('=') else {
                continue;
            };
            let (key, value) = (key.trim(), value.trim());
            match section.as_str() {
                "libdefaults" if key == "default_realm" => {
                    conf.default_realm = Some(value.to_owned());
                }
                "realms" if value == "{" => realm = Some(key.to_owned()),
                "realms" if key == "kdc" => {
                    if let Some(r) = &realm {
                        conf.kdcs.push((r.clone(), value.to_owned()));
                    }
                }
                _ => {}
            }
        }
        conf
    }

    /// The KDCs of `realm` (compared without regard to case), as `host` or `host:port`.
    pub fn kdcs_of(&self, realm: &str) -> Vec<&str> {
        self.kdcs
            .iter()
            .filter(|(r, _)| r.eq_ignore_ascii_case(realm))
            .map(|(_, kdc)| kdc.as_str())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_realms_kdcs_and_the_default_realm() {
        let conf = Krb5Conf::parse(
            "# comment\n[libdefaults]\n  default_realm = CORP.EXAMPLE\n  dns_lookup_kdc = false\n\
             [realms]\n  CORP.EXAMPLE = {\n    kdc = dc1.corp.example\n    kdc = dc2.corp.example:88\n\
             admin_server = dc1.corp.example\n  }\n  OTHER = {\n kdc = 10.0.0.1\n }\n[domain_realm]\n\
             .corp.example = CORP.EXAMPLE\n",
        );
        assert_eq!(conf.default_realm.as_deref(), Some("CORP.EXAMPLE"));
        assert_eq!(
            conf.kdcs_of("corp.example"),
            ["dc1.corp.example", "dc2.corp.example:88"]
        );
        assert_eq!(conf.kdcs_of("OTHER"), ["10.0.0.1"]);
        assert!(conf.kdcs_of("NOWHERE").is_empty());
    }
}
