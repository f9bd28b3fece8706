"""`make rehearse`: runs the compiled Kubeflow spec locally, task by task, with
stand-ins for the KFP launcher and Cloud Storage and the faults seen on real
clusters. Test tooling: never part of the image."""
