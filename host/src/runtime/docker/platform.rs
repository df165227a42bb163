//! Fabric's chaincode platforms (`core/chaincode/platforms/{golang,node,java}`): how a
//! package becomes an image, and how its container starts.
//!
//! As in Fabric, a build runs the platform's script in a *builder* container with the
//! package's `code.tar.gz` at `/chaincode/input`, takes `/chaincode/output/.` as
//! `binpackage.tar`, and builds the runtime image `FROM` the platform's runtime image with
//! `ADD binpackage.tar <dir>`. One addition: a Node package that brings its dependencies
//! (`src/node_modules/fabric-shim`) needs no builder and no network; its `src/` is the
//! output, and it starts with the shim's `cli.js` directly, which is what its
//! `fabric-chaincode-node start` script runs, so the runtime image needs nothing but
//! `node`.

use crate::package::ChaincodePackage;

/// Fabric's image namespace and two-digit version (core.yaml `$(DOCKER_NS)`,
/// `$(TWO_DIGIT_VERSION)`).
const FABRIC_IMAGES: &str = "hyperledger";
const FABRIC_TWO_DIGIT_VERSION: &str = "2.5";
/// The Fabric version images are labelled with (`org.hyperledger.fabric.version`).
pub const FABRIC_VERSION: &str = "2.5.0";

/// Where the builder finds the package and leaves its output.
pub const BUILD_INPUT: &str = "/chaincode/input";
/// Where the builder's output is read from.
pub const BUILD_OUTPUT: &str = "/chaincode/output";

/// The images builds use, by platform. Defaults are Fabric's (core.yaml).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Images {
    /// `chaincode.builder`: builds Go chaincode (`fabric-ccenv`).
    pub builder: String,
    /// `chaincode.golang.runtime` (`fabric-baseos`).
    pub golang: String,
    /// `chaincode.node.runtime` (`fabric-nodeenv`): builds and runs Node chaincode.
    pub node: String,
    /// `chaincode.java.runtime` (`fabric-javaenv`): builds and runs Java chaincode.
    pub java: String,
}

impl Default for Images {
    fn default() -> Self {
        let image = |name: &str| format!("{FABRIC_IMAGES}/{name}:{FABRIC_TWO_DIGIT_VERSION}");
        Self {
            builder: image("fabric-ccenv"),
            golang: image("fabric-baseos"),
            node: image("fabric-nodeenv"),
            java: image("fabric-javaenv"),
        }
    }
}

/// A chaincode platform.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Platform {
    /// `golang`
    Golang,
    /// `node`
    Node,
    /// `java`
    Java,
}

/// How the package's build runs, if it needs one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuilderStep {
    /// The builder image.
    pub image: String,
    /// The script run with `/bin/sh -c`.
    pub script: String,
    /// Extra environment.
    pub env: Vec<String>,
}

/// Fabric's Go build script (`golang/platform.go`), for a package whose code is under
/// `src/` (module mode, with or without `vendor/`; else GOPATH mode). `%[1]s` is the link
/// flags, `%[2]s` the package path.
fn go_build_script(ldflags: &str, path: &str) -> String {
    format!(
        r#"set -e
if [ -f "/chaincode/input/src/go.mod" ] && [ -d "/chaincode/input/src/vendor" ]; then
    cd /chaincode/input/src
    GO111MODULE=on go build -v -mod=vendor {ldflags} -o /chaincode/output/chaincode {path}
elif [ -f "/chaincode/input/src/go.mod" ]; then
    cd /chaincode/input/src
    GO111MODULE=on go build -v -mod=readonly {ldflags} -o /chaincode/output/chaincode {path}
elif [ -f "/chaincode/input/src/{path}/go.mod" ] && [ -d "/chaincode/input/src/{path}/vendor" ]; then
    cd /chaincode/input/src/{path}
    GO111MODULE=on go build -v -mod=vendor {ldflags} -o /chaincode/output/chaincode .
elif [ -f "/chaincode/input/src/{path}/go.mod" ]; then
    cd /chaincode/input/src/{path}
    GO111MODULE=on go build -v -mod=readonly {ldflags} -o /chaincode/output/chaincode .
else
    GO111MODULE=off GOPATH=/chaincode/input:$GOPATH go build -v {ldflags} -o /chaincode/output/chaincode {path}
fi
echo Done!
"#
    )
}

/// Fabric's static link flags for Go chaincode (`chaincode.golang.dynamicLink: false`).
const GO_STATIC_LDFLAGS: &str = r#"-ldflags "-linkmode external -extldflags '-static'""#;

/// Fabric's Node build script (`node/platform.go`).
const NODE_BUILD_SCRIPT: &str = "set -e
if [ -x /chaincode/build.sh ]; then
\t/chaincode/build.sh
else
\tcp -R /chaincode/input/src/. /chaincode/output && cd /chaincode/output && npm install --production
fi
";

/// Fabric's Node start script (`dockercontroller`), `%[1]s` the peer address.
fn node_start_script(peer_address: &str) -> String {
    format!(
        "if [ -x /chaincode/start.sh ]; then
\t/chaincode/start.sh --peer.address {peer_address}
else
\tcd /usr/local/src
\tnpm start -- --peer.address {peer_address}
fi
"
    )
}

impl Platform {
    /// The platform of a `metadata.json` type (Fabric upper-cases it to pick one).
    pub fn of(kind: &str) -> Option<Self> {
        match kind.to_ascii_uppercase().as_str() {
            "GOLANG" => Some(Self::Golang),
            "NODE" => Some(Self::Node),
            "JAVA" => Some(Self::Java),
            _ => None,
        }
    }

    /// Fabric's name of the platform (`chaincode.type` label).
    pub fn name(self) -> &'static str {
        match self {
            Self::Golang => "GOLANG",
            Self::Node => "NODE",
            Self::Java => "JAVA",
        }
    }

    /// The image the chaincode runs in.
    pub fn runtime_image(self, images: &Images) -> &str {
        match self {
            Self::Golang => &images.golang,
            Self::Node => &images.node,
            Self::Java => &images.java,
        }
    }

    /// Where the build output goes in the runtime image.
    pub fn install_dir(self) -> &'static str {
        match self {
            Self::Golang => "/usr/local/bin",
            Self::Node => "/usr/local/src",
            Self::Java => "/root/chaincode-java/chaincode",
        }
    }

    /// Checks the package's code as Fabric's `ValidateCodePackage` does: only `src/` and
    /// `META-INF/` entries; a Node package needs `src/package.json`.
    pub fn validate(self, package: &ChaincodePackage) -> Result<(), String> {
        let mut any = false;
        for path in package.code_paths() {
            if !(path.starts_with("src/") || path.starts_with("META-INF/")) {
                return Err(format!("illegal file detected in payload: {path:?}"));
            }
            any |= path.starts_with("src/");
        }
        if self == Self::Node && package.code_file("src/package.json").is_none() {
            return Err("a node package needs src/package.json in code.tar.gz".to_owned());
        }
        if !any {
            return Err(format!(
                "a {} package needs its code under src/ in code.tar.gz",
                self.name().to_ascii_lowercase()
            ));
        }
        Ok(())
    }

    /// Whether a Node package brings its dependencies (then no builder runs).
    pub fn bundles_dependencies(self, package: &ChaincodePackage) -> bool {
        self == Self::Node
            && package
                .code_file("src/node_modules/fabric-shim/cli.js")
                .is_some()
    }

    /// The builder run the package needs (None: its `src/` is the output as is).
    pub fn builder(self, images: &Images, package: &ChaincodePackage) -> Option<BuilderStep> {
        match self {
            Self::Golang => Some(BuilderStep {
                image: images.builder.clone(),
                script: go_build_script(GO_STATIC_LDFLAGS, &package.metadata().path),
                env: vec!["GOPROXY=https://proxy.golang.org".to_owned()],
            }),
            Self::Node if self.bundles_dependencies(package) => None,
            Self::Node => Some(BuilderStep {
                image: images.node.clone(),
                script: NODE_BUILD_SCRIPT.to_owned(),
                // Quieter npm; the script is Fabric's.
                env: vec![
                    "npm_config_audit=false".to_owned(),
                    "npm_config_fund=false".to_owned(),
                    "npm_config_update_notifier=false".to_owned(),
                ],
            }),
            Self::Java => Some(BuilderStep {
                image: images.java.clone(),
                script: "./build.sh".to_owned(),
                env: Vec::new(),
            }),
        }
    }

    /// The runtime image's Dockerfile (Fabric's `GenerateDockerfile` plus its labels).
    pub fn dockerfile(self, images: &Images) -> String {
        format!(
            "FROM {}\nADD binpackage.tar {}\nLABEL org.hyperledger.fabric.chaincode.type=\"{}\" \\\n      org.hyperledger.fabric.version=\"{FABRIC_VERSION}\"\nENV CORE_CHAINCODE_BUILDLEVEL={FABRIC_VERSION}\n",
            self.runtime_image(images),
            self.install_dir(),
            self.name(),
        )
    }

    /// The container's command (Fabric's `GetArgs`).
    pub fn command(self, package: &ChaincodePackage, peer_address: &str) -> Vec<String> {
        let args: Vec<&str> = match self {
            Self::Golang => {
                return vec![
                    "chaincode".to_owned(),
                    format!("-peer.address={peer_address}"),
                ];
            }
            Self::Java => vec!["/root/chaincode-java/start", "--peerAddress", peer_address],
            Self::Node if self.bundles_dependencies(package) => vec![
                "node",
                "node_modules/fabric-shim/cli.js",
                "start",
                "--peer.address",
                peer_address,
            ],
            Self::Node => {
                return vec![
                    "/bin/sh".to_owned(),
                    "-c".to_owned(),
                    node_start_script(peer_address),
                ];
            }
        };
        args.into_iter().map(str::to_owned).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::package::build_package;

    fn package(kind: &str, path: &str, files: &[(&str, &[u8])]) -> ChaincodePackage {
        ChaincodePackage::parse(&build_package("cc", kind, path, files).unwrap()).unwrap()
    }

    #[test]
    fn types_map_to_platforms_as_fabric_upper_cases_them() {
        assert_eq!(Platform::of("golang"), Some(Platform::Golang));
        assert_eq!(Platform::of("NODE"), Some(Platform::Node));
        assert_eq!(Platform::of("Java"), Some(Platform::Java));
        assert_eq!(Platform::of("car"), None);
        assert_eq!(Platform::of("wasm"), None);
    }

    #[test]
    fn default_images_are_fabrics() {
        let images = Images::default();
        assert_eq!(images.builder, "hyperledger/fabric-ccenv:2.5");
        assert_eq!(
            Platform::Golang.runtime_image(&images),
            "hyperledger/fabric-baseos:2.5"
        );
        assert_eq!(
            Platform::Node.runtime_image(&images),
            "hyperledger/fabric-nodeenv:2.5"
        );
        assert_eq!(
            Platform::Java.runtime_image(&images),
            "hyperledger/fabric-javaenv:2.5"
        );
    }

    #[test]
    fn go_builds_statically_in_ccenv_and_runs_from_usr_local_bin() {
        let images = Images::default();
        let go = package("golang", "github.com/x/cc", &[("src/go.mod", b"module x")]);
        let step = Platform::Golang.builder(&images, &go).unwrap();
        assert_eq!(step.image, "hyperledger/fabric-ccenv:2.5");
        assert!(step.script.contains(
            "GO111MODULE=on go build -v -mod=readonly -ldflags \"-linkmode external -extldflags '-static'\" -o /chaincode/output/chaincode github.com/x/cc\n"
        ));
        assert!(step.script.ends_with("fi\necho Done!\n"));
        assert_eq!(
            Platform::Golang.dockerfile(&images),
            "FROM hyperledger/fabric-baseos:2.5\nADD binpackage.tar /usr/local/bin\nLABEL org.hyperledger.fabric.chaincode.type=\"GOLANG\" \\\n      org.hyperledger.fabric.version=\"2.5.0\"\nENV CORE_CHAINCODE_BUILDLEVEL=2.5.0\n"
        );
        assert_eq!(
            Platform::Golang.command(&go, "127.0.0.1:7052"),
            ["chaincode", "-peer.address=127.0.0.1:7052"]
        );
    }

    #[test]
    fn java_builds_and_runs_in_javaenv() {
        let images = Images::default();
        let java = package("java", "", &[("src/build.gradle", b"")]);
        let step = Platform::Java.builder(&images, &java).unwrap();
        assert_eq!(
            (step.image.as_str(), step.script.as_str()),
            ("hyperledger/fabric-javaenv:2.5", "./build.sh")
        );
        assert!(
            Platform::Java
                .dockerfile(&images)
                .starts_with("FROM hyperledger/fabric-javaenv:2.5\nADD binpackage.tar /root/chaincode-java/chaincode\n")
        );
        assert_eq!(
            Platform::Java.command(&java, "127.0.0.1:7052"),
            [
                "/root/chaincode-java/start",
                "--peerAddress",
                "127.0.0.1:7052"
            ]
        );
    }

    #[test]
    fn node_with_its_dependencies_needs_no_builder_and_starts_the_shim_directly() {
        let images = Images::default();
        let bundled = package(
            "node",
            "",
            &[
                ("src/package.json", b"{}"),
                ("src/node_modules/fabric-shim/cli.js", b""),
            ],
        );
        assert_eq!(Platform::Node.builder(&images, &bundled), None);
        assert_eq!(
            Platform::Node.command(&bundled, "127.0.0.1:7052"),
            [
                "node",
                "node_modules/fabric-shim/cli.js",
                "start",
                "--peer.address",
                "127.0.0.1:7052"
            ]
        );

        let bare = package("node", "", &[("src/package.json", b"{}")]);
        let step = Platform::Node.builder(&images, &bare).unwrap();
        assert_eq!(step.image, "hyperledger/fabric-nodeenv:2.5");
        assert!(step.script.contains(
            "cp -R /chaincode/input/src/. /chaincode/output && cd /chaincode/output && npm install --production\n"
        ));
        let command = Platform::Node.command(&bare, "127.0.0.1:7052");
        assert_eq!(command[..2], ["/bin/sh", "-c"]);
        assert!(command[2].contains("\tnpm start -- --peer.address 127.0.0.1:7052\n"));
    }

    #[test]
    fn code_outside_src_and_meta_inf_is_refused() {
        let bad = package("node", "", &[("src/package.json", b"{}"), ("evil.sh", b"")]);
        assert_eq!(
            Platform::Node.validate(&bad),
            Err("illegal file detected in payload: \"evil.sh\"".to_owned())
        );
        let empty = package("golang", "", &[("META-INF/x", b"")]);
        assert_eq!(
            Platform::Golang.validate(&empty),
            Err("a golang package needs its code under src/ in code.tar.gz".to_owned())
        );
        let no_manifest = package("node", "", &[("src/index.js", b"")]);
        assert_eq!(
            Platform::Node.validate(&no_manifest),
            Err("a node package needs src/package.json in code.tar.gz".to_owned())
        );
    }
}
