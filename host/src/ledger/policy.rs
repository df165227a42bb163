//! Endorsement policies: Fabric's policy language and how a set of signers satisfies it.
//!
//! [`parse`] reads the language of `peer lifecycle chaincode approveformyorg
//! --signature-policy` (`common/policydsl`): `OR('Org1MSP.member', AND('Org2MSP.peer',
//! 'Org3MSP.admin'))`, `OutOf(2, 'A.member', 'B.member', 'C.member')`, into a
//! `SignaturePolicyEnvelope`. [`satisfied`] evaluates one as Fabric's `cauthdsl` does:
//! `SignedBy(i)` consumes one not-yet-used signer satisfying principal `i`, `NOutOf(n,
//! rules)` counts the rules satisfied, and each signer counts once across the whole rule.
//! [`ChannelPolicies`] holds what the channel configuration gives: each organisation's
//! `Endorsement` policy, combined by `/Channel/Application/Endorsement` (`MAJORITY
//! Endorsement`).

use std::collections::BTreeMap;

use cchost_proto::common::{
    ApplicationPolicy, SignaturePolicy, SignaturePolicyEnvelope, application_policy,
    signature_policy,
};
use cchost_proto::common::{MspPrincipal, MspRole, msp_principal, msp_role};
use prost::Message;

use crate::msp::Identity;

/// The channel policy every chaincode uses unless its definition names another.
pub const DEFAULT_ENDORSEMENT: &str = "/Channel/Application/Endorsement";

/// Fabric's text when signers do not satisfy a signature policy.
pub const NOT_SATISFIED: &str = "signature set did not satisfy policy";

/// Why a policy cannot be read or evaluated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// The policy text does not parse.
    #[error("unrecognized token '{token}' in policy string")]
    Syntax {
        /// What was not understood.
        token: String,
    },
    /// A principal is not `'MSP.role'` with a known role.
    #[error(
        "invalid principal '{0}': expected 'MSPID.role' with role member, admin, client, peer or orderer"
    )]
    Principal(String),
    /// A gate's arguments are wrong (e.g. `OutOf` with a bad count).
    #[error("{0}")]
    Arguments(String),
    /// The signers do not satisfy the policy (Fabric's words).
    #[error("{0}")]
    NotSatisfied(String),
    /// A policy reference names no policy of the channel.
    #[error("policy {0} not found")]
    Unknown(String),
}

/// Parses a signature policy string into its envelope. Identical principals share one
/// entry, in order of first appearance, as in Fabric.
pub fn parse(text: &str) -> Result<SignaturePolicyEnvelope, PolicyError> {
    let tokens = tokenize(text)?;
    let mut parser = Parser {
        tokens: &tokens,
        at: 0,
        identities: Vec::new(),
    };
    let rule = parser.expression()?;
    if let Some(extra) = parser.tokens.get(parser.at) {
        return Err(PolicyError::Syntax {
            token: extra.text(),
        });
    }
    Ok(SignaturePolicyEnvelope {
        version: 0,
        rule: Some(rule),
        identities: parser.identities,
    })
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Word(String),
    Quoted(String),
    Number(i64),
    Open,
    Close,
    Comma,
}

impl Token {
    fn text(&self) -> String {
        match self {
            Self::Word(w) => w.clone(),
            Self::Quoted(q) => format!("'{q}'"),
            Self::Number(n) => n.to_string(),
            Self::Open => "(".into(),
            Self::Close => ")".into(),
            Self::Comma => ",".into(),
        }
    }
}

fn tokenize(text: &str) -> Result<Vec<Token>, PolicyError> {
    let mut tokens = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(&c) = chars.peek() {
        match c {
            c if c.is_whitespace() => {
                chars.next();
            }
            '(' | ')' | ',' => {
                chars.next();
                tokens.push(match c {
                    '(' => Token::Open,
                    ')' => Token::Close,
                    _ => Token::Comma,
                });
            }
            '\'' | '"' => {
                chars.next();
                let mut quoted = String::new();
                loop {
                    match chars.next() {
                        Some(end) if end == c => break,
                        Some(other) => quoted.push(other),
                        None => {
                            return Err(PolicyError::Syntax {
                                token: format!("{c}{quoted}"),
                            });
                        }
                    }
                }
                tokens.push(Token::Quoted(quoted));
            }
            c if c.is_ascii_digit() => {
                let mut number = String::new();
                while let Some(&d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                    number.push(d);
                    chars.next();
                }
                let value = number
                    .parse()
                    .map_err(|_| PolicyError::Syntax { token: number })?;
                tokens.push(Token::Number(value));
            }
            c if c.is_ascii_alphabetic() => {
                let mut word = String::new();
                while let Some(&d) = chars.peek().filter(|d| d.is_ascii_alphanumeric()) {
                    word.push(d);
                    chars.next();
                }
                tokens.push(Token::Word(word));
            }
            other => {
                return Err(PolicyError::Syntax {
                    token: other.to_string(),
                });
            }
        }
    }
    Ok(tokens)
}

struct Parser<'a> {
    tokens: &'a [Token],
    at: usize,
    identities: Vec<MspPrincipal>,
}

impl Parser<'_> {
    fn next(&mut self) -> Option<Token> {
        let token = self.tokens.get(self.at).cloned();
        self.at += 1;
        token
    }

    fn expect(&mut self, want: &Token) -> Result<(), PolicyError> {
        match self.next() {
            Some(ref got) if got == want => Ok(()),
            Some(got) => Err(PolicyError::Syntax { token: got.text() }),
            None => Err(PolicyError::Syntax {
                token: "end of policy".into(),
            }),
        }
    }

    fn expression(&mut self) -> Result<SignaturePolicy, PolicyError> {
        match self.next() {
            Some(Token::Quoted(principal)) => self.principal(&principal),
            Some(Token::Word(gate)) => {
                self.expect(&Token::Open)?;
                let lower = gate.to_ascii_lowercase();
                let n = if lower == "outof" {
                    let n = match self.next() {
                        Some(Token::Number(n)) => n,
                        Some(Token::Quoted(q)) => q.parse().map_err(|_| {
                            PolicyError::Arguments(format!(
                                "unrecognized type, expected a number, got {q}"
                            ))
                        })?,
                        Some(other) => {
                            return Err(PolicyError::Syntax {
                                token: other.text(),
                            });
                        }
                        None => {
                            return Err(PolicyError::Syntax {
                                token: "end of policy".into(),
                            });
                        }
                    };
                    self.expect(&Token::Comma)?;
                    Some(n)
                } else if lower == "and" || lower == "or" {
                    None
                } else {
                    return Err(PolicyError::Syntax { token: gate });
                };
                let mut rules = vec![self.expression()?];
                while self.tokens.get(self.at) == Some(&Token::Comma) {
                    self.at += 1;
                    rules.push(self.expression()?);
                }
                self.expect(&Token::Close)?;
                let count = i64::try_from(rules.len()).unwrap_or(i64::MAX);
                let n = match (lower.as_str(), n) {
                    ("and", _) => count,
                    ("or", _) => 1,
                    (_, Some(n)) if (1..=count).contains(&n) => n,
                    (_, Some(n)) => {
                        return Err(PolicyError::Arguments(format!(
                            "invalid t-out-of-n predicate, t {n}, n {count}"
                        )));
                    }
                    _ => 1,
                };
                Ok(SignaturePolicy {
                    r#type: Some(signature_policy::Type::NOutOf(signature_policy::NOutOf {
                        n: i32::try_from(n).unwrap_or(i32::MAX),
                        rules,
                    })),
                })
            }
            Some(other) => Err(PolicyError::Syntax {
                token: other.text(),
            }),
            None => Err(PolicyError::Syntax {
                token: "end of policy".into(),
            }),
        }
    }

    fn principal(&mut self, text: &str) -> Result<SignaturePolicy, PolicyError> {
        let bad = || PolicyError::Principal(text.to_owned());
        let (msp, role) = text.rsplit_once('.').ok_or_else(bad)?;
        if msp.is_empty()
            || !msp
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
        {
            return Err(bad());
        }
        let role = match role {
            "member" => msp_role::MspRoleType::Member,
            "admin" => msp_role::MspRoleType::Admin,
            "client" => msp_role::MspRoleType::Client,
            "peer" => msp_role::MspRoleType::Peer,
            "orderer" => msp_role::MspRoleType::Orderer,
            _ => return Err(bad()),
        };
        let principal = MspPrincipal {
            principal_classification: msp_principal::Classification::Role as i32,
            principal: MspRole {
                msp_identifier: msp.to_owned(),
                role: role as i32,
            }
            .encode_to_vec(),
        };
        let index = match self.identities.iter().position(|p| *p == principal) {
            Some(index) => index,
            None => {
                self.identities.push(principal);
                self.identities.len() - 1
            }
        };
        Ok(SignaturePolicy {
            r#type: Some(signature_policy::Type::SignedBy(
                i32::try_from(index).unwrap_or(i32::MAX),
            )),
        })
    }
}

/// Whether `signers` (distinct, with verified signatures) satisfy `policy`.
pub fn satisfied(policy: &SignaturePolicyEnvelope, signers: &[Identity]) -> bool {
    let mut used = vec![false; signers.len()];
    policy
        .rule
        .as_ref()
        .is_some_and(|rule| evaluate(rule, &policy.identities, signers, &mut used, 0))
}

/// Nesting beyond this is refused (a policy comes from a transaction's key metadata).
const MAX_DEPTH: usize = 64;

fn evaluate(
    rule: &SignaturePolicy,
    principals: &[MspPrincipal],
    signers: &[Identity],
    used: &mut [bool],
    depth: usize,
) -> bool {
    if depth > MAX_DEPTH {
        return false;
    }
    match &rule.r#type {
        Some(signature_policy::Type::SignedBy(index)) => {
            let Some(principal) = usize::try_from(*index).ok().and_then(|i| principals.get(i))
            else {
                return false;
            };
            for (signer, taken) in signers.iter().zip(used.iter_mut()) {
                if !*taken && signer.satisfies(principal) {
                    *taken = true;
                    return true;
                }
            }
            false
        }
        Some(signature_policy::Type::NOutOf(gate)) => {
            let mut verified = 0i64;
            let mut trial = used.to_vec();
            for sub in &gate.rules {
                trial.copy_from_slice(used);
                if evaluate(sub, principals, signers, &mut trial, depth + 1) {
                    verified += 1;
                    used.copy_from_slice(&trial);
                }
            }
            verified >= i64::from(gate.n)
        }
        None => false,
    }
}

/// The policies a channel's configuration defines for endorsement: each organisation's
/// `Endorsement` signature policy, by MSP id.
#[derive(Debug, Clone, Default)]
pub struct ChannelPolicies {
    /// `/Channel/Application/<Org>/Endorsement`, by MSP id.
    pub org_endorsement: BTreeMap<String, SignaturePolicyEnvelope>,
}

impl ChannelPolicies {
    /// Evaluates `/Channel/Application/Endorsement`: an implicit MAJORITY of the
    /// organisations' `Endorsement` policies (with no organisations it always passes, as
    /// Fabric's implicit meta policy with no sub-policies does).
    pub fn endorsement(&self, signers: &[Identity]) -> Result<(), PolicyError> {
        let total = self.org_endorsement.len();
        let required = if total == 0 { 0 } else { total / 2 + 1 };
        let met = self
            .org_endorsement
            .values()
            .filter(|policy| satisfied(policy, signers))
            .count();
        if met >= required {
            Ok(())
        } else {
            Err(PolicyError::NotSatisfied(format!(
                "implicit policy evaluation failed - {met} sub-policies were satisfied, but this policy requires {required} of the 'Endorsement' sub-policies to be satisfied"
            )))
        }
    }

    /// Evaluates an application policy: a signature policy, or a reference to a channel
    /// policy (only [`DEFAULT_ENDORSEMENT`] is defined).
    pub fn evaluate(
        &self,
        policy: &ApplicationPolicy,
        signers: &[Identity],
    ) -> Result<(), PolicyError> {
        match &policy.r#type {
            Some(application_policy::Type::SignaturePolicy(envelope)) => {
                if satisfied(envelope, signers) {
                    Ok(())
                } else {
                    Err(PolicyError::NotSatisfied(NOT_SATISFIED.to_owned()))
                }
            }
            Some(application_policy::Type::ChannelConfigPolicyReference(path))
                if path == DEFAULT_ENDORSEMENT =>
            {
                self.endorsement(signers)
            }
            Some(application_policy::Type::ChannelConfigPolicyReference(path)) => {
                Err(PolicyError::Unknown(path.clone()))
            }
            None => Err(PolicyError::Unknown("(none)".to_owned())),
        }
    }
}

/// The application policy naming the channel's default endorsement policy.
pub fn default_endorsement() -> ApplicationPolicy {
    ApplicationPolicy {
        r#type: Some(application_policy::Type::ChannelConfigPolicyReference(
            DEFAULT_ENDORSEMENT.to_owned(),
        )),
    }
}

/// The application policy of a signature policy.
pub fn signature_policy(envelope: SignaturePolicyEnvelope) -> ApplicationPolicy {
    ApplicationPolicy {
        r#type: Some(application_policy::Type::SignaturePolicy(envelope)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::msp::{DevCa, MspManager, Role};

    fn signers(cas: &[&DevCa], roles: &[(usize, Role)]) -> Vec<Identity> {
        let manager = MspManager::new(cas.iter().map(|ca| ca.msp().unwrap()));
        roles
            .iter()
            .map(|(ca, role)| {
                let identity = cas[*ca].issue(*role, "someone").unwrap();
                manager.deserialize(&identity.creator()).unwrap()
            })
            .collect()
    }

    #[test]
    fn or_of_one_principal_is_one_out_of_one_signed_by_zero() {
        let envelope = parse("OR('Org1MSP.member')").unwrap();
        assert_eq!(envelope.identities.len(), 1);
        let rule = envelope.rule.unwrap();
        let Some(signature_policy::Type::NOutOf(gate)) = rule.r#type else {
            panic!("not a gate")
        };
        assert_eq!(gate.n, 1);
        assert_eq!(
            gate.rules[0].r#type,
            Some(signature_policy::Type::SignedBy(0))
        );
    }

    #[test]
    fn repeated_principals_share_one_identity_entry() {
        let envelope = parse("AND('A.member', OR('B.peer', 'A.member'))").unwrap();
        assert_eq!(envelope.identities.len(), 2);
    }

    #[test]
    fn bad_policies_are_refused_with_the_reason() {
        assert_eq!(
            parse("OutOf(4, 'A.member', 'B.member')").unwrap_err(),
            PolicyError::Arguments("invalid t-out-of-n predicate, t 4, n 2".into())
        );
        assert!(matches!(
            parse("OR('A.boss')").unwrap_err(),
            PolicyError::Principal(_)
        ));
        assert!(matches!(
            parse("XOR('A.member')").unwrap_err(),
            PolicyError::Syntax { .. }
        ));
        assert!(matches!(
            parse("OR('A.member'").unwrap_err(),
            PolicyError::Syntax { .. }
        ));
    }

    #[test]
    fn and_needs_a_distinct_signer_for_each_principal() {
        let (a, b) = (DevCa::new("A", "A").unwrap(), DevCa::new("B", "B").unwrap());
        let policy = parse("AND('A.member', 'B.peer')").unwrap();
        assert!(satisfied(
            &policy,
            &signers(&[&a, &b], &[(0, Role::Client), (1, Role::Peer)])
        ));
        assert!(!satisfied(
            &policy,
            &signers(&[&a, &b], &[(0, Role::Client), (1, Role::Client)])
        ));
        // One signer cannot count twice.
        let twice = parse("AND('A.member', 'A.member')").unwrap();
        assert!(!satisfied(&twice, &signers(&[&a], &[(0, Role::Peer)])));
        assert!(satisfied(
            &twice,
            &signers(&[&a], &[(0, Role::Peer), (0, Role::Client)])
        ));
    }

    #[test]
    fn out_of_counts_satisfied_rules() {
        let cas: Vec<DevCa> = ["A", "B", "C"]
            .iter()
            .map(|m| DevCa::new(m, m).unwrap())
            .collect();
        let refs: Vec<&DevCa> = cas.iter().collect();
        let policy = parse("OutOf(2, 'A.member', 'B.member', 'C.member')").unwrap();
        assert!(!satisfied(&policy, &signers(&refs, &[(0, Role::Peer)])));
        assert!(satisfied(
            &policy,
            &signers(&refs, &[(0, Role::Peer), (2, Role::Peer)])
        ));
    }

    #[test]
    fn majority_of_three_orgs_needs_two() {
        let cas: Vec<DevCa> = ["A", "B", "C"]
            .iter()
            .map(|m| DevCa::new(m, m).unwrap())
            .collect();
        let refs: Vec<&DevCa> = cas.iter().collect();
        let policies = ChannelPolicies {
            org_endorsement: ["A", "B", "C"]
                .iter()
                .map(|m| {
                    (
                        (*m).to_owned(),
                        parse(&format!("OR('{m}.member')")).unwrap(),
                    )
                })
                .collect(),
        };
        assert_eq!(
            policies
                .endorsement(&signers(&refs, &[(1, Role::Peer)]))
                .unwrap_err()
                .to_string(),
            "implicit policy evaluation failed - 1 sub-policies were satisfied, but this policy requires 2 of the 'Endorsement' sub-policies to be satisfied"
        );
        policies
            .endorsement(&signers(&refs, &[(1, Role::Peer), (2, Role::Peer)]))
            .unwrap();
    }
}
