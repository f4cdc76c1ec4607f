from tests.integration.conftest import base_images, docker_client

__all__ = ["base_images", "docker_client"]
