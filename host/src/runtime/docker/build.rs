//! Images: Fabric's platform builds (`DockerBuild`): the platform's builder container
//! turns `code.tar.gz` into `binpackage.tar`, which the runtime image adds; bounded by the
//! install timeout.

use std::time::Instant;

use bollard::models::{ContainerCreateBody, HostConfig};
use bollard::query_parameters::{
    BuildImageOptionsBuilder, CreateContainerOptionsBuilder, DownloadFromContainerOptionsBuilder,
    LogsOptionsBuilder, RemoveContainerOptionsBuilder, UploadToContainerOptionsBuilder,
};
use futures_util::StreamExt;
use tracing::info;

use super::container::exit_code;
use super::{
    BUILD_INPUT, BUILD_LOG, BUILD_OUTPUT, BuilderStep, DockerRuntime, RemoveOnDrop, container_name,
    platform_of,
};
use crate::ids::PackageId;
use crate::launcher::LaunchError;
use crate::package::ChaincodePackage;

/// The builder container of a package's image build.
fn builder_name(package_id: &PackageId) -> String {
    format!("{}-build", container_name(package_id))
}

impl DockerRuntime {
    /// Builds the package's image (tagged [`container_name`]): the platform's builder
    /// if it needs one, then the runtime image with its output, within the install
    /// timeout (Fabric's `chaincode.installTimeout`): a build still running then is
    /// stopped and its builder container removed, so a hung `npm install` cannot hold the
    /// package's launches. Records Fabric's build duration metric.
    pub async fn build_image(&self, package: &ChaincodePackage) -> Result<(), LaunchError> {
        let id = package.id();
        let started = Instant::now();
        let timeout = self.config.install_timeout;
        let result = match tokio::time::timeout(timeout, self.build(package)).await {
            Ok(result) => result,
            Err(_) => {
                // The dropped build's guard removes its builder in the background; this
                // waits until it is gone.
                self.remove_named(&builder_name(id)).await;
                Err(format!(
                    "building the image did not finish within {timeout:?} (the install \
                     timeout, chaincode.installTimeout); the build was stopped"
                ))
            }
        };
        if let Some(metrics) = &self.metrics {
            metrics.container_build(id, started.elapsed(), result.is_ok());
        }
        result.map_err(|reason| LaunchError::Start {
            package_id: id.clone(),
            reason,
        })
    }

    async fn build(&self, package: &ChaincodePackage) -> Result<(), String> {
        let platform = platform_of(package)?;
        let images = &self.config.images;
        let binpackage = match platform.builder(images, package) {
            Some(step) => self.run_builder(package, &step).await?,
            None => src_tar(package)?,
        };
        let runtime_image = platform.runtime_image(images);
        self.require_image(runtime_image).await?;
        let context = tar(&[
            ("Dockerfile", platform.dockerfile(images).as_bytes()),
            ("binpackage.tar", &binpackage),
        ])?;
        let tag = container_name(package.id());
        info!(target: BUILD_LOG, chaincode = %package.id(), image = tag, from = runtime_image, "building the chaincode image");
        let options = BuildImageOptionsBuilder::default()
            .dockerfile("Dockerfile")
            .t(&tag)
            .rm(true)
            .forcerm(true)
            .nocache(!self.config.build_cache)
            .build();
        let mut progress =
            self.docker
                .build_image(options, None, Some(bollard::body_full(context.into())));
        let mut error = None;
        while let Some(step) = progress.next().await {
            match step {
                Ok(info) => {
                    if let Some(line) = info
                        .stream
                        .as_deref()
                        .map(str::trim_end)
                        .filter(|l| !l.is_empty())
                    {
                        info!(target: BUILD_LOG, chaincode = %package.id(), "image build: {line}");
                    }
                    if let Some(detail) = info.error_detail.and_then(|d| d.message) {
                        error = Some(detail);
                    }
                }
                Err(e) => error = Some(e.to_string()),
            }
        }
        match error {
            None => Ok(()),
            Some(e) => Err(format!("building image {tag}: {e}")),
        }
    }

    /// Fails with a clear message when `image` is not in the engine. Nothing is pulled
    /// (Fabric's `chaincode.pull: false`; and no registry may be reachable).
    async fn require_image(&self, image: &str) -> Result<(), String> {
        match self.docker.inspect_image(image).await {
            Ok(_) => Ok(()),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => Err(format!(
                "image {image} is not in the Docker engine; cchost does not pull images: load, import or build it (or configure another image)"
            )),
            Err(e) => Err(format!("inspecting image {image}: {e}")),
        }
    }

    /// Fabric's `DockerBuild`: runs `step` in a builder container with the package's code
    /// at `/chaincode/input`, and returns `/chaincode/output/.` as a tar. The container
    /// is removed however the build ends.
    async fn run_builder(
        &self,
        package: &ChaincodePackage,
        step: &BuilderStep,
    ) -> Result<Vec<u8>, String> {
        self.require_image(&step.image).await?;
        let name = builder_name(package.id());
        info!(target: BUILD_LOG, chaincode = %package.id(), builder = step.image, "running the chaincode builder");
        let remove = RemoveContainerOptionsBuilder::default().force(true).build();
        let _ = self.docker.remove_container(&name, Some(remove)).await;
        // Removed however the build ends, also when it is dropped (a timeout, a launch
        // given up on) while the builder runs.
        let builder = RemoveOnDrop::new(self, &name);
        let result = self.build_in(&name, package, step).await;
        builder.remove().await;
        result
    }

    async fn build_in(
        &self,
        name: &str,
        package: &ChaincodePackage,
        step: &BuilderStep,
    ) -> Result<Vec<u8>, String> {
        let body = ContainerCreateBody {
            image: Some(step.image.clone()),
            cmd: Some(vec![
                "/bin/sh".to_owned(),
                "-c".to_owned(),
                step.script.clone(),
            ]),
            env: Some(step.env.clone()),
            host_config: Some(HostConfig {
                // Builders may fetch dependencies (npm, Go modules); the engine here has
                // no bridge network.
                network_mode: Some("host".to_owned()),
                cap_drop: Some(vec!["ALL".to_owned()]),
                security_opt: Some(vec!["no-new-privileges".to_owned()]),
                memory: Some(self.config.memory_bytes),
                pids_limit: Some(self.config.pids_limit),
                ..Default::default()
            }),
            ..Default::default()
        };
        let options = CreateContainerOptionsBuilder::default().name(name).build();
        self.docker
            .create_container(Some(options), body)
            .await
            .map_err(|e| format!("Error creating container: {e}"))?;
        let mut input = vec![(format!("{BUILD_OUTPUT}/.keep"), Vec::new())];
        for path in package.code_paths() {
            if let Some(bytes) = package.code_file(path) {
                input.push((format!("{BUILD_INPUT}/{path}"), bytes.to_vec()));
            }
        }
        let input: Vec<(&str, &[u8])> = input
            .iter()
            .map(|(p, b)| (p.trim_start_matches('/'), b.as_slice()))
            .collect();
        let upload = UploadToContainerOptionsBuilder::default().path("/").build();
        self.docker
            .upload_to_container(name, Some(upload), bollard::body_full(tar(&input)?.into()))
            .await
            .map_err(|e| format!("Error uploading input to container: {e}"))?;
        self.docker
            .start_container(name, None)
            .await
            .map_err(|e| format!("Error executing build: {e}"))?;
        let code = exit_code(&self.docker, name).await;
        let options = LogsOptionsBuilder::default()
            .stdout(true)
            .stderr(true)
            .build();
        let output: String = self
            .docker
            .logs(name, Some(options))
            .filter_map(|chunk| async move { chunk.ok().map(|c| c.to_string()) })
            .collect::<Vec<_>>()
            .await
            .concat();
        for line in output.lines() {
            info!(target: BUILD_LOG, chaincode = %package.id(), "builder: {line}");
        }
        if code != 0 {
            return Err(format!(
                "Error returned from build: {code} \"{}\"",
                output.trim_end()
            ));
        }
        let options = DownloadFromContainerOptionsBuilder::default()
            .path(&format!("{BUILD_OUTPUT}/."))
            .build();
        let mut download = self.docker.download_from_container(name, Some(options));
        let mut tar = Vec::new();
        while let Some(chunk) = download.next().await {
            tar.extend_from_slice(&chunk.map_err(|e| format!("Error downloading output: {e}"))?);
        }
        Ok(tar)
    }
}

/// A deterministic tar of `files` (path, bytes) for the engine.
fn tar(files: &[(&str, &[u8])]) -> Result<Vec<u8>, String> {
    crate::package::write_tar(Vec::new(), files).map_err(|e| format!("writing a build tar: {e}"))
}

/// What Fabric's Node builder's `cp -R /chaincode/input/src/.` yields, for a package that
/// needs no builder: its `src/` tree at the root.
fn src_tar(package: &ChaincodePackage) -> Result<Vec<u8>, String> {
    let files: Vec<(&str, &[u8])> = package
        .code_paths()
        .filter_map(|path| Some((path.strip_prefix("src/")?, package.code_file(path)?)))
        .collect();
    tar(&files)
}
